"""The top-level http/ folder must never shadow the standard library's http package."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))
STDLIB = sysconfig.get_paths()["stdlib"]
REPO = Path(__file__).resolve().parents[2]


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


def _imports(path: Path) -> set[str]:
    """Every module a source file names in an import statement, relative imports resolved."""
    import ast

    package = "clipstream." + ".".join(path.relative_to(REPO).parent.parts)
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                out.add(f"{base}.{node.module}" if node.module else base)
            else:
                out.add(node.module or "")
    return out


def test_the_api_names_no_actor_module() -> None:
    """The API is stateless: what it shares with the nodes is the bus contract (clipstream.bus)."""
    files = sorted((REPO / "http").rglob("*.py"))
    assert len(files) > 20
    offenders = {str(f.relative_to(REPO)): sorted(m for m in _imports(f) if m.startswith(("clipstream.actors", "thespian")))
                 for f in files}
    assert {f: m for f, m in offenders.items() if m} == {}


def test_importing_the_api_loads_neither_the_actor_runtime_nor_thespian() -> None:
    # Transitively too: a bus or storage module importing an actor one would pull it in.
    code = ("import importlib, pkgutil, sys; import clipstream.http as h\n"
            "for m in pkgutil.walk_packages(h.__path__, 'clipstream.http.'): importlib.import_module(m.name)\n"
            "print(len([m for m in sys.modules if m.startswith('clipstream.http.')]))\n"
            "print(sorted(m for m in sys.modules if m.startswith(('clipstream.actors', 'thespian'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/", timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, leaked = out.stdout.splitlines()
    assert int(loaded) > 20
    assert leaked == "[]"
