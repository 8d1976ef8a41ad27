"""Runs the API under granian: N worker processes, each building the app with ``create_app``."""

from __future__ import annotations

from pathlib import Path

from clipstream.config.settings import Settings

__all__ = ["APP_FACTORY", "run_api"]

APP_FACTORY = "clipstream.http.app:create_app"


def _import_root() -> Path:
    # granian puts its working directory first on sys.path (the current directory by default).
    # Started from the repository root, that would make the top-level `http/` folder shadow the
    # standard library's `http`; the directory holding the installed `clipstream` package is safe.
    import clipstream

    return Path(clipstream.__file__).resolve().parent.parent


def run_api(settings: Settings) -> None:
    """Serve the API until interrupted (blocking).

    Host, port and worker count come from ``settings``; each worker process builds its app from the
    environment (``get_settings()``), so settings must come from ``CLIPSTREAM_*`` variables.
    """
    from granian import Granian
    from granian.constants import Interfaces, Loops

    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.http.host,
        port=settings.http.port,
        interface=Interfaces.ASGI,
        workers=settings.http.workers,
        loop=Loops.uvloop,
        respawn_failed_workers=True,  # a crashed worker comes back without an operator
        working_dir=_import_root(),
        log_access=False,
    ).serve()
