"""`clipstream api`: the HTTP API process."""

from __future__ import annotations

import click

__all__ = ["api"]


@click.command("api")
@click.option("--host", default=None, help="listen address (default: CLIPSTREAM_HTTP_HOST)")
@click.option("--port", type=int, default=None, help="listen port (default: CLIPSTREAM_HTTP_PORT)")
@click.option("--workers", type=int, default=None, help="worker processes (default: CLIPSTREAM_HTTP_WORKERS)")
def api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API (Litestar on granian)."""
    import msgspec

    from clipstream.config.settings import get_settings
    from clipstream.http.server import run_api

    settings = get_settings()
    changes = {k: v for k, v in (("host", host), ("port", port), ("workers", workers)) if v is not None}
    if changes:
        # Only the listener is configured here; workers read the rest of the settings from the environment.
        settings = msgspec.structs.replace(settings, http=msgspec.structs.replace(settings.http, **changes))
    run_api(settings)
