"""The `clipstream` command: one entry point for every process and operator tool."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """clipstream: actor-based real-time backend for short-video platforms."""


@main.command("config")
def config_cmd() -> None:
    """Print every setting: environment variable, type, default and meaning."""
    from clipstream.config import env_variables, get_settings

    get_settings()  # fail here, naming the variable, if the environment holds a bad value
    for name, typ, default, desc in env_variables():
        click.echo(f"{name:<40} {typ:<6} {default!s:<40} {desc}")


def _register() -> None:
    # Subcommand groups live beside the code they drive; imported here so `clipstream --help` lists them.
    from clipstream.stack.cli import stack

    main.add_command(stack)


_register()
