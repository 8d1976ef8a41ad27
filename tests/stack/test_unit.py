"""Stack pieces that need no running service: process identity, selection, generated configs."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace

import pytest

from clipstream.config import load_settings
from clipstream.stack import pins
from clipstream.stack.base import StackContext, StackError
from clipstream.stack.proc import is_alive, read_record, spawn, terminate, write_record
from clipstream.stack.runner import SERVICES, select


@pytest.fixture
def ctx(tmp_path):
    settings = load_settings({
        "CLIPSTREAM_STACK_STATE_DIR": str(tmp_path / "state"),
    })  # the real cache dir: configs are generated only for what is installed there
    return StackContext(settings)


def test_spawned_process_is_recognised_and_stopped(tmp_path):
    rec = spawn(["sleep", "60"], tmp_path / "sleep.log")
    try:
        assert is_alive(rec)
        write_record(tmp_path / "sleep.pid", rec)
        assert read_record(tmp_path / "sleep.pid") == rec
        assert terminate(rec, timeout=5) == "stopped"
        assert not is_alive(rec)
    finally:
        subprocess.run(["kill", "-9", str(rec.pid)], capture_output=True)


def test_recycled_pid_is_never_taken_for_ours(tmp_path):
    rec = spawn(["sleep", "60"], tmp_path / "sleep.log")
    try:
        impostor = replace(rec, starttime=rec.starttime - 1)  # same pid, another process start
        assert not is_alive(impostor)
        assert terminate(impostor, timeout=1) == "not running"
        assert is_alive(rec), "a record that does not match must never be signalled"
        other_exe = replace(rec, exe="/usr/bin/redis-server")
        assert not is_alive(other_exe)
    finally:
        terminate(rec, timeout=5)


def test_term_ignoring_process_is_killed(tmp_path):
    rec = spawn(["bash", "-c", "trap '' TERM; sleep 60 & wait; sleep 60"], tmp_path / "stubborn.log")
    time.sleep(0.2)
    t = time.monotonic()
    assert terminate(rec, timeout=1) == "killed"
    assert time.monotonic() - t < 8
    assert not is_alive(rec)


def test_select_adds_dependencies_and_rejects_unknown():
    assert select(None) == list(SERVICES)
    assert select("minio") == ["nats", "minio"]
    assert select("redis, cassandra") == ["redis", "cassandra"]
    with pytest.raises(StackError, match="unknown"):
        select("redis,postgres")


def test_generated_configs_listen_on_loopback_only(ctx):
    for name in ("redis", "nats", "cassandra", "minio"):
        svc = SERVICES[name](ctx)
        # command() needs the binary: skip services not installed on this machine
        if not svc.installed():
            continue
        argv, env = svc.command()
        text = " ".join(argv) + " " + " ".join(f"{k}={v}" for k, v in env.items())
        assert "0.0.0.0" not in text
        for conf in svc.data_dir.rglob("*"):
            if conf.is_file() and conf.suffix in (".conf", ".yaml", ".xml"):
                body = conf.read_text()
                assert "0.0.0.0" not in body and "${" not in body, conf
                assert str(ctx.state_dir) in body, f"{conf} should keep its data under the state dir"
    cassandra = SERVICES["cassandra"](ctx)
    if cassandra.installed():
        yaml = (cassandra.data_dir / "conf" / "cassandra.yaml").read_text()
        assert f"listen_address: {pins.HOST}" in yaml and f"rpc_address: {pins.HOST}" in yaml
        assert "AllowAllAuthenticator" in yaml


def test_port_taken_by_a_stranger_is_reported(ctx):
    import socket

    sock = socket.socket()
    sock.bind((pins.HOST, 0))
    sock.listen()
    port = sock.getsockname()[1]
    settings = load_settings({
        "CLIPSTREAM_STACK_STATE_DIR": str(ctx.state_dir),
        "CLIPSTREAM_STACK_CACHE_DIR": str(ctx.cache_dir),
        "CLIPSTREAM_REDIS_URL": f"redis://127.0.0.1:{port}/0",
    })
    svc = SERVICES["redis"](StackContext(settings))
    if not svc.installed():
        pytest.skip("redis-server not installed")
    try:
        with pytest.raises(StackError, match="already in use"):
            svc.ensure_running()
        assert not svc.pid_file.exists()
    finally:
        sock.close()


def test_wipe_only_touches_the_state_dir(ctx):
    for name, cls in SERVICES.items():
        svc = cls(ctx)
        for path in svc.wipe_paths():
            assert path.is_relative_to(ctx.state_dir), (name, path)
            assert path not in (ctx.state_dir, ctx.log_dir, ctx.run_dir), (name, path)
            assert not path.is_relative_to(ctx.cache_dir), (name, path)
