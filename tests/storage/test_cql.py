"""Cql.write_many: unlogged batches by replica and partition, against the real CQL server."""

from __future__ import annotations

from typing import Any

import pytest
from cassandra.query import BatchStatement

from clipstream.storage.cql import BATCH_BYTES, BATCH_ROWS, Cql
from clipstream.storage.errors import StorageUnavailable
from clipstream.storage.ids import new_id
from tests.storage.conftest import rows_of

pytestmark = pytest.mark.integration

PAGE = "INSERT INTO feed_pages (user_id, page, video_ids) VALUES (?, ?, ?)"
STATE = "INSERT INTO feed_state (user_id, applied_seq, next_page, inbox) VALUES (?, ?, ?, ?)"


class TestWriteMany:
    async def test_rows_of_one_partition_share_a_batch(self, cql: Cql, sent: list[Any]) -> None:
        users = [new_id() for _ in range(7)]
        pages = [(u, p, [p, p + 1]) for u in users for p in range(BATCH_ROWS - 4)]
        await cql.write_many((STATE, [(u, 3, BATCH_ROWS, [1, 2]) for u in users]), (PAGE, pages))
        assert len(sent) == len(users)  # one local node: one replica set; each user's rows fit one batch
        for request in sent:
            assert isinstance(request, BatchStatement) and len(request) == BATCH_ROWS - 3
            assert len({row[0] for row in rows_of(request)}) == 1  # the partition key (user_id) comes first
        for u in users:
            stored = await cql.execute("SELECT page FROM feed_pages WHERE user_id = ?", (u,))
            assert sorted(r.page for r in stored) == list(range(BATCH_ROWS - 4))

    async def test_batches_are_bounded_by_rows_and_bytes(self, cql: Cql, sent: list[Any]) -> None:
        many = [(new_id(), 1, [1]) for _ in range(3 * BATCH_ROWS + 5)]  # small rows, all different partitions
        big_user = new_id()
        big = [(big_user, p, list(range(300))) for p in range(12)]  # ~3.6 KB each: one partition split by size
        await cql.write_many((PAGE, many + big))
        assert sum(len(rows_of(r)) for r in sent) == len(many) + len(big)
        for request in sent:
            rows = rows_of(request)
            assert len(rows) <= BATCH_ROWS
            assert sum(len(v) for row in rows for v in row) <= BATCH_BYTES
        stored = await cql.execute("SELECT page, video_ids FROM feed_pages WHERE user_id = ?", (big_user,))
        assert len(stored) == len(big) and all(len(r.video_ids) == 300 for r in stored)
        for user, page, _ in many[:: BATCH_ROWS // 2]:
            assert await cql.execute("SELECT page FROM feed_pages WHERE user_id = ?", (user,))

    async def test_nothing_to_write_sends_nothing(self, cql: Cql, sent: list[Any]) -> None:
        await cql.write_many((PAGE, []), (STATE, iter(())))
        assert sent == []

    async def test_a_rejected_batch_raises_storage_unavailable(self, cql: Cql) -> None:
        rows = [(new_id(), 1, [1], -1) for _ in range(5)]  # a negative TTL: the server refuses the batch
        with pytest.raises(StorageUnavailable, match="TTL"):
            await cql.write_many((PAGE.replace("(?, ?, ?)", "(?, ?, ?) USING TTL ?"), rows))

    async def test_an_unknown_table_raises_storage_unavailable(self, cql: Cql) -> None:
        with pytest.raises(StorageUnavailable):
            await cql.write_many(("INSERT INTO no_such_table (id) VALUES (?)", [(1,), (2,)]))
