"""A test kind for the shard runtime: counts likes and views per video into a SQLite file.

The shard runs in another process, so what it flushes must be readable from outside: SQLite (path in
``ECHO_KIND_DB``; not ``CLIPSTREAM_*``, which the settings loader reserves) is a real store with
transactions, shared by every shard process and by the test. Beyond the counts it
records every applied stream sequence, so a double application is caught, not just suspected, and a
``control`` table lets a test make flushes fail on demand.

It follows the entity contract to the letter: ``handle`` skips sequences the entity already applied.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import msgspec

from clipstream.actors.entity import EntityKind, Outbox
from clipstream.bus.messages import BusMessage, LikeDelta, ViewDelta
from clipstream.bus.topology import Topology
from clipstream.config.settings import Settings

__all__ = [
    "DB_ENV",
    "POISON_USER",
    "EchoCounter",
    "EchoCounterKind",
    "EchoStore",
    "NullCounterKind",
    "make_echo_kind",
    "make_null_kind",
]

DB_ENV = "ECHO_KIND_DB"
#: a ViewDelta from this user makes ``handle`` raise
POISON_USER = 666

_SCHEMA = """
create table if not exists counts (
    key integer primary key, likes integer not null, views integer not null,
    applied_seq integer not null, events integer not null);
create table if not exists applied (key integer not null, seq integer not null, primary key (key, seq));
create table if not exists control (name text primary key, value integer not null);
"""


@dataclass(slots=True)
class EchoCounter:
    key: int
    likes: int = 0
    views: int = 0
    applied_seq: int = 0
    events: int = 0
    #: sequences applied since the last snapshot
    new_seqs: list[int] = field(default_factory=list)


class EchoRow(msgspec.Struct, frozen=True):
    key: int
    likes: int
    views: int
    applied_seq: int
    events: int
    new_seqs: tuple[int, ...] = ()


class EchoStore:
    """The SQLite file; a connection per call, since calls come from several threads and processes."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        db.execute("pragma journal_mode=wal")
        return db

    def load(self, keys: list[int]) -> dict[int, EchoRow]:
        with self._connect() as db:
            marks = ",".join("?" * len(keys))
            rows = db.execute(f"select key, likes, views, applied_seq, events from counts where key in ({marks})", keys)
            return {r[0]: EchoRow(*r) for r in rows}

    def save(self, rows: list[EchoRow]) -> None:
        db = self._connect()
        try:
            db.execute("begin immediate")
            for r in rows:
                db.execute(
                    "insert into counts values (?, ?, ?, ?, ?) on conflict(key) do update set likes=excluded.likes,"
                    " views=excluded.views, applied_seq=excluded.applied_seq, events=excluded.events",
                    (r.key, r.likes, r.views, r.applied_seq, r.events),
                )
                for seq in r.new_seqs:
                    if db.execute("insert or ignore into applied values (?, ?)", (r.key, seq)).rowcount == 0:
                        db.execute(
                            "insert into control values ('double_applied', 1)"
                            " on conflict(name) do update set value = value + 1"
                        )
            db.execute("commit")
        except BaseException:
            db.execute("rollback")
            raise
        finally:
            db.close()

    def control(self, name: str) -> int:
        with self._connect() as db:
            row = db.execute("select value from control where name = ?", (name,)).fetchone()
            return row[0] if row else 0

    def set_control(self, name: str, value: int) -> None:
        with self._connect() as db:
            db.execute(
                "insert into control values (?, ?) on conflict(name) do update set value = excluded.value",
                (name, value),
            )

    def bump(self, name: str) -> None:
        with self._connect() as db:
            db.execute("insert into control values (?, 1) on conflict(name) do update set value = value + 1", (name,))

    def counts(self) -> dict[int, EchoRow]:
        with self._connect() as db:
            return {r[0]: EchoRow(*r) for r in db.execute("select key, likes, views, applied_seq, events from counts")}

    def applied(self, key: int) -> list[int]:
        with self._connect() as db:
            return [r[0] for r in db.execute("select seq from applied where key = ? order by seq", (key,))]


class EchoCounterKind(EntityKind[EchoCounter]):
    """Counts LikeDelta/ViewDelta per video; every applied like is echoed on ``<prefix>.video.echo``."""

    name = "counter"

    def __init__(self, store: EchoStore, topology: Topology) -> None:
        self.store = store
        self.echo_subject = topology.video_subject("echo")
        #: likes applied by this process: a kind counter, for the status tree's ``counters``
        self.likes_applied = 0

    def key_of(self, message: BusMessage) -> int:
        if isinstance(message, (LikeDelta, ViewDelta)):
            return message.video_id
        raise TypeError(f"{type(message).__name__} is not a counter message")

    async def load(self, keys: list[int]) -> dict[int, EchoCounter]:
        rows = await asyncio.to_thread(self.store.load, keys)
        out = {}
        for key in keys:
            r = rows.get(key)
            out[key] = EchoCounter(key, r.likes, r.views, r.applied_seq, r.events) if r else EchoCounter(key)
        return out

    def handle(self, entity: EchoCounter, message: BusMessage, seq: int, outbox: Outbox) -> bool:
        if seq <= entity.applied_seq:
            return False
        if isinstance(message, ViewDelta):
            if message.user_id == POISON_USER:
                raise ValueError(f"user {POISON_USER} is poison")
            entity.views += 1
        elif isinstance(message, LikeDelta):
            entity.likes += message.delta
            self.likes_applied += 1
            outbox.publish(self.echo_subject, message, msg_id=f"echo:{entity.key}:{seq}")
        entity.applied_seq = seq
        entity.events += 1
        entity.new_seqs.append(seq)
        return True

    def query(self, entity: EchoCounter, request: bytes) -> tuple[bytes, bool]:
        return msgspec.json.encode(
            {"key": entity.key, "likes": entity.likes, "views": entity.views, "applied_seq": entity.applied_seq,
             "request": msgspec.json.decode(request)}
        ), False

    def counters(self) -> dict[str, int]:
        return {"likes_applied": self.likes_applied}

    def snapshot(self, entity: EchoCounter) -> Any:
        row = EchoRow(entity.key, entity.likes, entity.views, entity.applied_seq, entity.events, tuple(entity.new_seqs))
        entity.new_seqs = []
        return row

    async def flush(self, snapshots: list[Any]) -> None:
        if await asyncio.to_thread(self.store.control, "fail_flush"):
            await asyncio.to_thread(self.store.bump, "flush_failures")
            raise RuntimeError("flush failure injected by the test")
        await asyncio.to_thread(self.store.save, snapshots)


def make_echo_kind(settings: Settings) -> EchoCounterKind:
    """Factory for ``KINDS``: ``"counter": "clipstream.actors.testing:make_echo_kind"``."""
    path = os.environ.get(DB_ENV)
    if not path:
        raise RuntimeError(f"{DB_ENV} must name the SQLite file of the echo kind")
    return EchoCounterKind(EchoStore(path), Topology.from_settings(settings.nats))


class NullCounterKind(EntityKind[list[int]]):
    """The cheapest possible kind, for measuring the runtime itself: counts in memory, writes nothing."""

    name = "counter"

    def key_of(self, message: BusMessage) -> int:
        return message.video_id  # type: ignore[union-attr]

    async def load(self, keys: list[int]) -> dict[int, list[int]]:
        return {k: [0, 0] for k in keys}  # [count, applied_seq]

    def handle(self, entity: list[int], message: BusMessage, seq: int, outbox: Outbox) -> bool:
        if seq <= entity[1]:
            return False
        entity[0] += 1
        entity[1] = seq
        return True

    def query(self, entity: list[int], request: bytes) -> tuple[bytes, bool]:
        return b"%d" % entity[0], False

    def snapshot(self, entity: list[int]) -> Any:
        return (entity[0], entity[1])

    async def flush(self, snapshots: list[Any]) -> None:
        return None


def make_null_kind(settings: Settings) -> NullCounterKind:
    """Factory for benchmarks: ``"counter": "clipstream.actors.testing:make_null_kind"``."""
    return NullCounterKind()
