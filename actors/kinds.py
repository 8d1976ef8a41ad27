"""The registry of entity kinds a node runs, by name → factory path.

Shard actors live in their own processes, so a kind travels as a dotted path
(``"package.module:function"``) that the shard imports and calls with the settings once it runs.
A new kind is one more entry of :data:`KINDS` (its entities in :mod:`clipstream.actors.entities`);
tests and benchmarks run others with ``clipstream node --kind NAME=FACTORY``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

from clipstream.actors.entity import EntityKind
from clipstream.config.settings import Settings

__all__ = ["KINDS", "KindError", "load_kind"]

#: kind name → factory path; the name is the subject family (:meth:`Topology.partition_subject`)
KINDS: dict[str, str] = {
    "counter": "clipstream.actors.entities.factories:make_counter_kind",
    "feed": "clipstream.actors.entities.factories:make_feed_kind",
}


class KindError(ValueError):
    """A factory path does not name a callable returning an EntityKind of the expected name."""


def load_kind(name: str, factory: str, settings: Settings) -> EntityKind[Any]:
    """Import ``factory`` and build the kind; checks that it is an EntityKind called ``name``."""
    module_name, _, attr = factory.partition(":")
    if not module_name or not attr:
        raise KindError(f"kind factory {factory!r} is not of the form 'package.module:function'")
    try:
        make: Callable[[Settings], EntityKind[Any]] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise KindError(f"kind factory {factory!r} cannot be imported: {exc}") from exc
    kind = make(settings)
    if not isinstance(kind, EntityKind):
        raise KindError(f"{factory} returned {type(kind).__name__}, not an EntityKind")
    if kind.name != name:
        raise KindError(f"{factory} built kind {kind.name!r}, registered as {name!r}")
    return kind
