"""`clipstream stack up|down|status`: the local service stack (Redis, NATS, Cassandra, MinIO, ffmpeg)."""

from __future__ import annotations

import time

import click

__all__ = ["stack"]

_ONLY = click.option("--only", default=None, metavar="NAMES",
                     help="comma separated subset: redis,nats,cassandra,minio,ffmpeg,chromium,wrk,vegeta (dependencies included)")


def _table(statuses) -> None:  # noqa: ANN001 - list[Status]
    for s in statuses:
        state = "healthy" if s.healthy else "DOWN"
        pid = str(s.pid) if s.pid else "-"
        click.echo(f"  {s.name:<10} {state:<8} pid {pid:<8} {s.address:<44} {s.detail}")


def _fail(exc: Exception) -> None:
    raise click.ClickException(str(exc)) from exc


@click.group()
def stack() -> None:
    """Install, start and stop Redis, NATS, Cassandra and MinIO on 127.0.0.1."""


@stack.command()
@_ONLY
def up(only: str | None) -> None:
    """Install what is missing, start what is not running, wait until each answers a real request."""
    from clipstream.stack.base import StackError
    from clipstream.stack.runner import make_context, select
    from clipstream.stack.runner import up as run_up

    ctx = make_context()
    try:
        statuses = run_up(ctx, select(only))
    except StackError as exc:
        _fail(exc)
    click.echo(f"stack up in {time.monotonic() - ctx.t0:.1f}s (state {ctx.state_dir}, cache {ctx.cache_dir}):")
    _table(statuses)
    if not all(s.healthy for s in statuses):
        raise click.ClickException("some services are not healthy")


@stack.command()
@_ONLY
@click.option("--wipe", is_flag=True, help="also delete the services' data (logs are kept)")
def down(only: str | None, wipe: bool) -> None:
    """Stop the processes `stack up` started (and only those)."""
    from clipstream.stack.base import StackError
    from clipstream.stack.runner import make_context, select
    from clipstream.stack.runner import down as run_down

    ctx = make_context()
    try:
        run_down(ctx, select(only), wipe=wipe)
    except StackError as exc:
        _fail(exc)
    click.echo(f"stack down in {time.monotonic() - ctx.t0:.1f}s")


@stack.command()
@_ONLY
def status(only: str | None) -> None:
    """Each service: pid, address, healthy or not. Exits 1 if any is down."""
    from clipstream.stack.base import StackError
    from clipstream.stack.runner import make_context, select
    from clipstream.stack.runner import status as run_status

    ctx = make_context()
    try:
        statuses = run_status(ctx, select(only))
    except StackError as exc:
        _fail(exc)
    _table(statuses)
    if not all(s.healthy for s in statuses):
        raise SystemExit(1)


@stack.command()
def setup() -> None:
    """Prepare services someone else runs (compose, production): schema, streams, buckets, notification.

    `up` does the same for the services it starts; this is the step for those it does not.
    """
    from clipstream.stack.runner import make_context
    from clipstream.stack.minio_service import MinioService
    from clipstream.stack.nats_service import NatsService
    from clipstream.storage.cql import apply_migrations

    ctx = make_context()
    try:
        click.echo(f"cql: migrations applied {apply_migrations(ctx.settings.cql) or 'none (up to date)'}")
        click.echo(f"nats: {NatsService(ctx).after_healthy()}")
        click.echo(f"minio: {MinioService(ctx).after_healthy()}")
    except Exception as exc:  # the services may still be starting: compose restarts this step
        _fail(exc)
