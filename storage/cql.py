"""CQL access for asyncio code: one session, prepared statements, awaitable execution, migrations.

The scylla-driver runs its own I/O thread (libev); :meth:`Cql.execute` bridges its ResponseFuture
into the caller's event loop, so many statements can be in flight from one coroutine with
:meth:`Cql.execute_many`. Bulk writes go through :meth:`Cql.write_many` instead: unlogged batches
of rows that live on the same replicas.
"""

from __future__ import annotations

import asyncio
import re
import time
from importlib import resources
from typing import Any, Iterable, Sequence

from cassandra import ConsistencyLevel
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, ResponseFuture, Session
from cassandra.policies import ConstantReconnectionPolicy, DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import BatchStatement, BatchType, BoundStatement, PreparedStatement

from clipstream.config.settings import CqlSettings
from clipstream.storage.data_migrations import DATA_STEPS
from clipstream.storage.errors import StorageUnavailable

__all__ = ["Cql", "apply_migrations", "connect_cql", "migrations"]

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.cql$")

#: Limits of one batch of :meth:`Cql.write_many`: rows, and bytes of serialized values. Cassandra
#: sizes a batch by its mutations, about 2.8x the values for a list column (each element is a cell
#: with a timestamp and a 16-byte path: a 10-video feed page row of ~170 B counts ~470 B), so 8 KiB
#: of values stays near 24 KiB, half its 50 KiB batch_size_fail_threshold.
#: 32 rows measured best (20,000 page rows in flushes of 500, one local node): 16 writes faster but
#: costs the client a third more CPU, 64 is slower (fewer batches in parallel) and saves nothing.
BATCH_ROWS = 32
BATCH_BYTES = 8 * 1024
BATCH_CONCURRENCY = 16
#: rows bound between two turns of the event loop (a bind costs ~10-20 µs; a shard's queries share
#: its loop with its flushes)
_BIND_SLICE = 256


def connect_cql(settings: CqlSettings, keyspace: str | None = None) -> "Cql":
    """Connect to the cluster (blocking; call once at process start)."""
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
        request_timeout=settings.timeout,
        consistency_level=ConsistencyLevel.LOCAL_QUORUM,
    )
    auth = (
        PlainTextAuthProvider(settings.username, settings.password) if settings.username else None
    )
    cluster = Cluster(
        settings.contact_points,
        port=settings.port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=auth,
        protocol_version=4,
        connect_timeout=settings.timeout,
        control_connection_timeout=settings.timeout,
        # The default backoff grows to minutes: after a node restart we want it back within a second.
        reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None),
    )
    try:
        session = cluster.connect(keyspace)
    except Exception as exc:  # the driver raises NoHostAvailable and friends
        cluster.shutdown()
        raise StorageUnavailable(f"CQL at {settings.hosts}:{settings.port}: {exc}") from exc
    return Cql(cluster, session)


class Cql:
    """An open session with a prepared-statement cache and asyncio-friendly execution."""

    __slots__ = ("cluster", "session", "_prepared")

    def __init__(self, cluster: Cluster, session: Session) -> None:
        self.cluster = cluster
        self.session = session
        self._prepared: dict[str, PreparedStatement] = {}

    def prepare(self, cql: str) -> PreparedStatement:
        stmt = self._prepared.get(cql)
        if stmt is None:
            stmt = self._prepared[cql] = self.session.prepare(cql)
        return stmt

    async def _prepared_async(self, cql: str) -> PreparedStatement:
        stmt = self._prepared.get(cql)
        if stmt is None:  # first use: the driver's prepare blocks on a round trip, keep it off the loop
            try:
                stmt = await asyncio.to_thread(self.prepare, cql)
            except Exception as exc:
                raise StorageUnavailable(f"prepare failed: {exc}") from exc
        return stmt

    async def execute(self, cql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Run one prepared statement; all rows of its first page."""
        return await _await(self.session.execute_async(await self._prepared_async(cql), params))

    async def execute_many(self, cql: str, param_list: Iterable[Sequence[Any]], concurrency: int = 256) -> list[list[Any]]:
        """Run one statement for many parameter tuples, ``concurrency`` in flight at a time."""
        stmt = await self._prepared_async(cql)
        params = list(param_list)
        results: list[list[Any]] = []
        for start in range(0, len(params), concurrency):
            chunk = params[start : start + concurrency]
            results.extend(
                await asyncio.gather(*(_await(self.session.execute_async(stmt, p)) for p in chunk))
            )
        return results

    async def write_many(
        self,
        *writes: tuple[str, Iterable[Sequence[Any]]],
        rows_per_batch: int = BATCH_ROWS,
        bytes_per_batch: int = BATCH_BYTES,
        concurrency: int = BATCH_CONCURRENCY,
    ) -> None:
        """Write rows of one or more ``(statement, parameter tuples)`` as unlogged batches; returns
        when every row is written.

        One statement per row costs the driver (and Scylla) a request each: query plan, frame,
        callback. Here rows are grouped by the replicas owning their partition, so each batch goes
        to a node that stores all of it (no coordinator fan-out), rows of one partition stay in one
        batch where they fit, and a batch holds at most ``rows_per_batch`` rows and about
        ``bytes_per_batch`` bytes of values (far under Cassandra's 50 KiB batch_size_fail_threshold).
        Unlogged: no batchlog, so no atomicity across partitions; the callers' writes are
        idempotent and retried by the next flush. A per-statement ``USING TIMESTAMP ?`` still holds
        (the batch sets none).
        """
        bound: list[BoundStatement] = []
        for cql, param_list in writes:
            stmt = await self._prepared_async(cql)
            for i, p in enumerate(param_list, 1):
                bound.append(stmt.bind(p))
                if i % _BIND_SLICE == 0:  # binding is Python: a big flush must not hold the loop
                    await asyncio.sleep(0)
        if not bound:
            return
        batches = _pack(_by_replicas(self.cluster, bound), rows_per_batch, bytes_per_batch)
        in_flight = asyncio.Semaphore(concurrency)

        async def send(batch: list[BoundStatement]) -> None:
            if len(batch) == 1:  # a batch of one is just overhead
                request: Any = batch[0]
            else:
                request = BatchStatement(BatchType.UNLOGGED)
                for b in batch:
                    request.add(b)
            async with in_flight:
                await _await(self.session.execute_async(request))

        await asyncio.gather(*(send(b) for b in batches))

    def execute_sync(self, cql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Blocking execution, for tools and start-up code."""
        try:
            return list(self.session.execute(cql, params))
        except Exception as exc:
            raise StorageUnavailable(str(exc)) from exc

    def close(self) -> None:
        self.cluster.shutdown()


def _by_replicas(cluster: Cluster, bound: list[BoundStatement]) -> list[list[list[BoundStatement]]]:
    """Rows grouped by the replica set of their partition, then by partition (insertion order)."""
    token_map = cluster.metadata.token_map
    groups: dict[Any, dict[Any, list[BoundStatement]]] = {}
    for b in bound:
        key = b.routing_key
        replicas: Any = None
        if token_map is not None and key is not None and b.keyspace:
            replicas = tuple(token_map.get_replicas(b.keyspace, token_map.token_class.from_key(key)))
        groups.setdefault(replicas, {}).setdefault(key, []).append(b)
    return [list(partitions.values()) for partitions in groups.values()]


def _pack(groups: list[list[list[BoundStatement]]], max_rows: int, max_bytes: int) -> list[list[BoundStatement]]:
    """Batches of at most ``max_rows`` rows and about ``max_bytes`` bytes, never mixing replica
    sets; a partition is split only when it alone is over a limit."""
    batches: list[list[BoundStatement]] = []
    for partitions in groups:
        batch: list[BoundStatement] = []
        size = 0
        for rows in partitions:
            sizes = [_size(b) for b in rows]
            if batch and (len(batch) + len(rows) > max_rows or size + sum(sizes) > max_bytes):
                batches.append(batch)
                batch, size = [], 0
            for b, row_size in zip(rows, sizes):
                if batch and (len(batch) >= max_rows or size + row_size > max_bytes):
                    batches.append(batch)
                    batch, size = [], 0
                batch.append(b)
                size += row_size
        if batch:
            batches.append(batch)
    return batches


def _size(b: BoundStatement) -> int:
    # serialized values plus the per-statement framing (query id, value lengths) in the request
    return 24 + sum(4 + len(v) for v in b.values if isinstance(v, bytes))


def _await(future: ResponseFuture) -> asyncio.Future[list[Any]]:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[list[Any]] = loop.create_future()

    def ok(rows: Any) -> None:
        loop.call_soon_threadsafe(_set, result, list(rows) if rows is not None else [])

    def err(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_fail, result, exc)

    future.add_callbacks(ok, err)
    return result


def _set(fut: asyncio.Future[list[Any]], rows: list[Any]) -> None:
    if not fut.done():
        fut.set_result(rows)


def _fail(fut: asyncio.Future[list[Any]], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(StorageUnavailable(f"{type(exc).__name__}: {exc}"))


def migrations() -> list[tuple[int, str, list[str]]]:
    """The packaged migrations in order: (version, name, statements)."""
    out = []
    for entry in resources.files("clipstream.storage").joinpath("migrations").iterdir():
        m = _MIGRATION_FILE.match(entry.name)
        if not m:
            continue
        text = "\n".join(line for line in entry.read_text().splitlines() if not line.strip().startswith("--"))
        statements = [s.strip() for s in text.split(";") if s.strip()]
        out.append((int(m.group(1)), m.group(2), statements))
    return sorted(out)


def apply_migrations(settings: CqlSettings) -> list[int]:
    """Create the keyspace and apply every migration not yet recorded; returns versions applied.

    Run once per deployment step (``clipstream migrate``), not by every process at start: concurrent
    schema changes from many clients are what CQL clusters handle worst.
    """
    cql = connect_cql(settings)
    try:
        ks = settings.keyspace
        cql.execute_sync(
            f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = "
            f"{{'class': 'SimpleStrategy', 'replication_factor': {settings.replication_factor}}}"
        )
        cql.execute_sync(
            f"CREATE TABLE IF NOT EXISTS {ks}.schema_migrations "
            "(version int PRIMARY KEY, name text, applied_at timestamp)"
        )
        done = {row.version for row in cql.execute_sync(f"SELECT version FROM {ks}.schema_migrations")}
        applied = []
        cql.session.set_keyspace(ks)
        for version, name, statements in migrations():
            if version in done:
                continue
            for stmt in statements:
                cql.execute_sync(stmt)
            step = DATA_STEPS.get(version)
            if step is not None:
                step(cql)
            cql.execute_sync(
                f"INSERT INTO {ks}.schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (version, name, int(time.time() * 1000)),
            )
            applied.append(version)
        cql.session.wait_for_schema_agreement()
        return applied
    finally:
        cql.close()
