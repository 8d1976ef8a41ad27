"""The repository's top-level `http/` folder must never shadow the standard library's `http`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import clipstream


def test_import_http_is_the_standard_library() -> None:
    import http

    assert Path(http.__file__).resolve().parent != Path(clipstream.__file__).resolve().parent / "http"
    assert hasattr(http, "HTTPStatus")


def test_granian_import_root_does_not_shadow_http() -> None:
    from clipstream.http.server import _import_root

    root = _import_root()
    out = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import http; print(http.__file__)", str(root)],
        capture_output=True, text=True, check=True, cwd="/",
    )
    assert "clipstream" not in out.stdout and str(Path(clipstream.__file__).parent / "http") not in out.stdout
