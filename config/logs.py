"""Structured logs, configured once per process: every line of api, node and worker looks the same.

JSON lines when stderr is not a terminal (``clipstream run`` under a supervisor, containers, log
shippers), ``key=value`` lines for a person at a terminal. structlog events and the standard
library's records (the CQL and NATS drivers, granian) go through the same processors: structlog
writes directly, so a library that reconfigures ``logging`` (Thespian does in its actor processes)
cannot swallow our events; ``logging`` records get the same renderer on the root handler.

Forked children (granian workers, Thespian actors) inherit the configuration; spawned ones call
:func:`configure_logging` again, which is harmless.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "stdlib_formatter"]

_configured = False


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that keeps the name it was asked for, so ``add_logger_name`` can report it."""

    def __init__(self, file: TextIO, name: str = "") -> None:
        super().__init__(file)
        self.name = name


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(as_json: bool) -> Any:
    return structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)


def _as_json() -> bool:
    return not sys.stderr.isatty()


def stdlib_formatter() -> logging.Formatter:
    """The formatter of standard-library records (also named by granian's logging dictConfig)."""
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _renderer(_as_json())],
        foreign_pre_chain=_shared_processors(),
    )


def configure_logging(level: int = logging.INFO) -> None:
    """Configure structlog and the root logger of this process (once; later calls do nothing)."""
    global _configured
    if _configured:
        return
    _configured = True
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            _renderer(_as_json()),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _NamedWriteLogger(sys.stderr, str(args[0]) if args else ""),
        # Not cached: a forked child must write to its own (inherited) stderr object all the same,
        # and the lookup is a dict get, far from any hot path.
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(stdlib_formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per HTTP call made by our own clients (demo, tools) drowns what matters.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
