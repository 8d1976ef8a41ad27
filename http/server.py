"""Runs the API under granian: N worker processes, each building the app with ``create_app``."""

from __future__ import annotations

from pathlib import Path

from clipstream.config.settings import Settings

__all__ = ["APP_FACTORY", "run_api"]

APP_FACTORY = "clipstream.http.app:create_app"


def _import_root() -> Path:
    # granian puts its working directory first on sys.path, and resolves the target's module name by
    # walking up from the current directory while it finds __init__.py files. From the repository
    # root both go wrong: the top-level `http/` folder would shadow the standard library's `http`, and
    # the target would become `main.clipstream.http.app`. The directory holding the `clipstream`
    # package is neither a package nor holds one named `http`.
    import clipstream

    return Path(clipstream.__file__).resolve().parent.parent


def run_api(settings: Settings) -> None:
    """Serve the API until interrupted (blocking).

    Host, port and worker count come from ``settings``; each worker process builds its app from the
    environment (``get_settings()``), so settings must come from ``CLIPSTREAM_*`` variables.
    """
    import os

    from granian import Granian
    from granian.constants import Interfaces, Loops

    root = _import_root()
    os.chdir(root)  # see _import_root
    Granian(
        APP_FACTORY,
        factory=True,
        address=settings.http.host,
        port=settings.http.port,
        interface=Interfaces.ASGI,
        workers=settings.http.workers,
        loop=Loops.uvloop,
        respawn_failed_workers=True,  # a crashed worker comes back without an operator
        working_dir=root,
        log_access=False,
    ).serve()
