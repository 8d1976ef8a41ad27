"""The top-level http/ folder must never shadow the standard library's http package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))
STDLIB = sysconfig.get_paths()["stdlib"]


def test_import_http_is_the_standard_library_in_the_test_process() -> None:
    import http
    import http.client

    import clipstream.http

    assert http.__file__.startswith(STDLIB)
    assert http.client.__file__.startswith(STDLIB)
    assert clipstream.http.__file__ != http.__file__


def test_processes_started_by_console_script_see_the_standard_library() -> None:
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([CLIPSTREAM, "doctor"], capture_output=True, text=True, cwd=repo, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    assert lines["http"].startswith(STDLIB), lines
    assert lines["clipstream.http"].startswith(str(repo)), lines


def test_settings_are_not_read_at_import_time() -> None:
    code = "import os; os.environ['CLIPSTREAM_CQL_PORT']='nope'; import clipstream.cli.main, clipstream.http; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_a_wrong_setting_fails_at_start_naming_the_variable() -> None:
    import os

    env = {**os.environ, "CLIPSTREAM_CQL_PORT": "ninety"}
    out = subprocess.run([CLIPSTREAM, "doctor"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 2
    assert "CLIPSTREAM_CQL_PORT" in out.stderr and "Traceback" not in out.stderr
