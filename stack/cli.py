"""`clipstream stack up|down|status`: the local service stack (being written)."""

import click

__all__ = ["stack"]


@click.group()
def stack() -> None:
    """Install, start and stop Redis, NATS, Cassandra and MinIO on 127.0.0.1."""
