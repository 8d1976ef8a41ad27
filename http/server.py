"""Runs the API under granian: N worker processes, each building the app with ``create_app``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from clipstream.config.settings import Settings

__all__ = ["APP_FACTORY", "run_api", "serve"]

APP_FACTORY = "clipstream.http.app:create_server_app"

# granian configures its own loggers with logging.config.dictConfig; its lines get our renderer.
_FORMATTER = {"()": "clipstream.config.logs.stdlib_formatter"}
GRANIAN_LOGGING = {"formatters": {"generic": _FORMATTER, "access": _FORMATTER}}


def _import_root() -> Path:
    # granian puts its working directory first on sys.path, and resolves the target's module name by
    # walking up from the current directory while it finds __init__.py files. From the repository
    # root both go wrong: the top-level `http/` folder would shadow the standard library's `http`, and
    # the target would become `main.clipstream.http.app`. The directory holding the `clipstream`
    # package is neither a package nor holds one named `http`.
    import clipstream

    return Path(clipstream.__file__).resolve().parent.parent


def _metrics_dir() -> str | None:
    """Put prometheus-client in multiprocess mode for the granian workers.

    Workers are processes (forked or spawned after this, so they inherit the variable before they
    import prometheus_client) and a scrape reaches one of them, which must report the samples of
    all. Returns the directory to remove at exit when it is ours.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        # prometheus-client's rule: wipe the directory between runs, or old samples linger.
        for stale in Path(given).glob("*.db"):
            stale.unlink()
        return None
    path = tempfile.mkdtemp(prefix="clipstream-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def serve(target: str, host: str, port: int, workers: int) -> None:
    """Serve an ASGI app factory (``module:function``) under granian until interrupted (blocking).

    The API and the benchmark's reference servers run through this one function, so they are
    served alike (same server, loop and options).
    """
    from granian import Granian
    from granian.constants import Interfaces, Loops

    root = _import_root()
    os.chdir(root)  # see _import_root
    Granian(
        target,
        factory=True,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        loop=Loops.uvloop,
        respawn_failed_workers=True,  # a crashed worker comes back without an operator
        working_dir=root,
        log_access=False,
        log_dictconfig=GRANIAN_LOGGING,
    ).serve()


def run_api(settings: Settings) -> None:
    """Serve the API until interrupted (blocking).

    Host, port and worker count come from ``settings``; each worker process builds its app from the
    environment (``get_settings()``), so settings must come from ``CLIPSTREAM_*`` variables.
    """
    metrics_dir = _metrics_dir()
    try:
        serve(APP_FACTORY, settings.http.host, settings.http.port, settings.http.workers)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
