"""The `clipstream` command: one entry point for every process and operator tool."""

from __future__ import annotations

import sys

import click

__all__ = ["main"]


class _Group(click.Group):
    """Turns a bad setting into one clear line naming the variable, not a traceback."""

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        from clipstream.config import SettingsError

        try:
            return super().invoke(ctx)
        except SettingsError as exc:
            raise click.UsageError(f"invalid setting: {exc}") from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """clipstream: actor-based real-time backend for short-video platforms."""
    from clipstream.config.logs import configure_logging

    # Every process starts here (api, node, worker, tools); their forked children inherit it.
    configure_logging()


@main.command("config")
def config_cmd() -> None:
    """Print every setting: environment variable, type, default and meaning."""
    from clipstream.config import env_variables, get_settings

    get_settings()  # fail here, naming the variable, if the environment holds a bad value
    for name, typ, default, desc in env_variables():
        click.echo(f"{name:<40} {typ:<6} {default!s:<40} {desc}")


@main.command("doctor")
def doctor_cmd() -> None:
    """Print where key modules load from and check the settings (operators' first look)."""
    import http

    import clipstream.http
    from clipstream.config import get_settings

    get_settings()
    click.echo(f"http={http.__file__}")
    click.echo(f"clipstream.http={clipstream.http.__file__}")
    click.echo("settings=ok")


@main.command("migrate")
def migrate_cmd() -> None:
    """Create the keyspace and apply CQL migrations not applied yet."""
    from clipstream.config import get_settings
    from clipstream.storage.cql import apply_migrations

    applied = apply_migrations(get_settings().cql)
    click.echo(f"migrations applied: {applied or 'none (up to date)'}")


@main.command("node")
@click.option("--kind", "kinds", multiple=True, metavar="NAME=FACTORY",
              help="run this entity kind, e.g. counter=clipstream.actors.testing:make_echo_kind "
                   "(repeatable; default: the registered kinds)")
def node_cmd(kinds: tuple[str, ...]) -> None:
    """Run an actor node: the Guardian and the shard actors of every entity kind."""
    from clipstream.actors.node import AdminPortHeld, NodeError
    from clipstream.actors.service import run_node
    from clipstream.config import get_settings

    chosen = {}
    for kind in kinds:
        name, sep, factory = kind.partition("=")
        if not (sep and name and factory):
            raise click.BadParameter(f"{kind!r} is not NAME=package.module:factory", param_hint="--kind")
        chosen[name] = factory
    try:
        run_node(get_settings(), chosen or None)
    except AdminPortHeld as exc:  # `clipstream run` does not restart a node for this
        click.echo(f"Error: {exc}", err=True)
        sys.exit(78)
    except NodeError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("worker")
def worker_cmd() -> None:
    """Run the media processing and follower fan-out consumers."""
    from clipstream.config import get_settings
    from clipstream.workers.service import run_worker

    run_worker(get_settings())


def _register() -> None:
    # Subcommand groups live beside the code they drive; imported here so `clipstream --help` lists them.
    from clipstream.bench.cli import bench_cmd
    from clipstream.bus.cli import bus
    from clipstream.cli.actors import actors_cmd
    from clipstream.cli.demo import demo_cmd
    from clipstream.http.cli import api
    from clipstream.cli.run import run_cmd
    from clipstream.stack.cli import stack

    main.add_command(stack)
    main.add_command(run_cmd)
    main.add_command(demo_cmd)
    main.add_command(api)
    main.add_command(bus)
    main.add_command(actors_cmd)
    main.add_command(bench_cmd)


_register()
