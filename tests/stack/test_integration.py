"""Against the real local stack (`clipstream stack up`): every service answers, uploads reach JetStream."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import os
import time
import urllib.parse
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from clipstream.stack.runner import SERVICES, make_context

from .conftest import run_cli

pytestmark = pytest.mark.integration


def _pids() -> dict[str, int]:
    ctx = make_context()
    out = {}
    for name, cls in SERVICES.items():
        svc = cls(ctx)
        if svc.has_process:
            rec = svc.record()
            assert rec is not None, f"{name} has no live pid file"
            out[name] = rec.pid
    return out


def test_second_up_is_quick_and_starts_nothing_new(stack_up):
    before = _pids()
    t = time.monotonic()
    out = run_cli("stack", "up", timeout=120)
    elapsed = time.monotonic() - t
    assert out.returncode == 0, out.stdout + out.stderr
    assert _pids() == before
    assert "started pid" not in out.stdout
    assert out.stdout.count("already running") == len(before)
    assert elapsed < 15, f"a warm `stack up` took {elapsed:.1f}s"


def _listening(pid: int) -> list[str]:
    """Local addresses of the TCP sockets ``pid`` listens on, from its fds and /proc/net/tcp{,6}."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    out = []
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addr = fields[1].split(":")[0]
                assert len(addr) == width
                raw = bytes.fromhex(addr)
                # /proc prints each 32-bit word in host (little-endian) order
                host = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                out.append(str(ipaddress.ip_address(host)))
    return out


def test_every_service_listens_on_loopback_only(stack_up):
    for name, pid in _pids().items():
        addresses = _listening(pid)
        assert addresses, f"{name} (pid {pid}) listens nowhere?"
        assert all(ipaddress.ip_address(a).is_loopback for a in addresses), f"{name} listens on {addresses}"


def test_status_reports_every_service_healthy(stack_up):
    out = run_cli("stack", "status", timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    for name in SERVICES:
        line = next(line for line in out.stdout.splitlines() if line.split()[0] == name)
        assert "healthy" in line, line


def test_redis_round_trip(stack_up):
    import redis

    client = redis.Redis.from_url(stack_up.redis.url, socket_timeout=2)
    key = f"stack-test:{uuid.uuid4()}"
    assert client.ping() is True
    client.set(key, b"v", ex=30)
    assert client.get(key) == b"v"
    client.delete(key)


def test_cql_query_and_write(stack_up):
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=RoundRobinPolicy(), request_timeout=10)
    cluster = Cluster(stack_up.cql.contact_points, port=stack_up.cql.port, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    try:
        session = cluster.connect()
        assert session.execute("SELECT release_version FROM system.local").one().release_version.startswith("5.0.")
        session.execute(
            "CREATE KEYSPACE IF NOT EXISTS stack_test WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
        )
        session.execute("CREATE TABLE IF NOT EXISTS stack_test.kv (k text PRIMARY KEY, v int)")
        key = str(uuid.uuid4())
        session.execute("INSERT INTO stack_test.kv (k, v) VALUES (%s, %s)", (key, 42))
        assert session.execute("SELECT v FROM stack_test.kv WHERE k = %s", (key,)).one().v == 42
    finally:
        cluster.shutdown()


def _minio(settings):
    from clipstream.stack.minio_service import minio_client

    return minio_client(settings, timeout=15)


async def test_upload_produces_event_on_the_minio_stream(stack_up):
    import nats
    from nats.js.api import ConsumerConfig, DeliverPolicy

    from clipstream.bus.topology import Topology

    subject = stack_up.nats.minio_subject
    stream = Topology.from_settings(stack_up.nats).stream_for(subject)
    client = _minio(stack_up)
    name = f"stack-test/{uuid.uuid4()}.bin"
    nc = await nats.connect(stack_up.nats.url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=stream, config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW))
        body = b"\x00clipstream" * 10
        await asyncio.to_thread(client.put_object, stack_up.minio.uploads_bucket, name, io.BytesIO(body), len(body))
        deadline = time.monotonic() + 20
        seen = []
        while time.monotonic() < deadline:
            try:
                msgs = await sub.fetch(10, timeout=2)
            except nats.errors.TimeoutError:
                continue
            for msg in msgs:
                await msg.ack()
                event = json.loads(msg.data)
                record = event["Records"][0]
                seen.append(record["s3"]["object"]["key"])
                if urllib.parse.unquote(record["s3"]["object"]["key"]) == name:
                    assert record["eventName"].startswith("s3:ObjectCreated:")
                    assert record["s3"]["bucket"]["name"] == stack_up.minio.uploads_bucket
                    assert record["s3"]["object"]["size"] == len(body)
                    return
        pytest.fail(f"no event for {name} on {subject} (stream {stream}) within 20s; saw {seen}")
    finally:
        await nc.close()  # the ephemeral consumer goes away with the connection (inactive threshold)
        await asyncio.to_thread(client.remove_object, stack_up.minio.uploads_bucket, name)


def test_presigned_put_then_get(stack_up):
    client = _minio(stack_up)
    bucket = stack_up.minio.uploads_bucket
    name = f"stack-test/{uuid.uuid4()}.mp4"
    url = client.presigned_put_object(bucket, name, expires=timedelta(minutes=5))
    body = uuid.uuid4().bytes * 1000
    resp = httpx.put(url, content=body, timeout=15)
    assert resp.status_code == 200, resp.text
    obj = client.get_object(bucket, name)
    try:
        assert obj.read() == body
    finally:
        obj.close()
        obj.release_conn()
    # the signature covers bucket and key: the same URL must not write another object
    forged = url.replace(urllib.parse.quote(name, safe="/"), urllib.parse.quote(name + ".x", safe="/"))
    assert httpx.put(forged, content=b"x", timeout=15).status_code == 403
    client.remove_object(bucket, name)


def test_presigned_urls_are_signed_for_the_public_endpoint(stack_up):
    """Clients may reach MinIO by another name than the servers do (containers: ``minio:9000``)."""
    import msgspec

    from clipstream.storage.objects import ObjectStore

    port = stack_up.minio.endpoint.rsplit(":", 1)[1]
    public = msgspec.structs.replace(stack_up.minio, public_endpoint=f"localhost:{port}")
    store = ObjectStore.from_settings(public)
    name = f"stack-test/{uuid.uuid4()}.mp4"
    url = store.upload_url(name)
    assert url.startswith(f"http://localhost:{port}/")
    # signed for that host: sent to the internal name, the same URL is refused
    assert httpx.put(url.replace("localhost", "127.0.0.1", 1), content=b"x", timeout=15).status_code == 403
    assert httpx.put(url, content=b"x" * 100, timeout=15).status_code == 200
    assert _minio(stack_up).stat_object(stack_up.minio.uploads_bucket, name).size == 100
    _minio(stack_up).remove_object(stack_up.minio.uploads_bucket, name)
