"""Data steps of CQL migrations: what a migration must do to rows, which CQL statements cannot.

:func:`clipstream.storage.cql.apply_migrations` runs a version's step right after the statements of
its file (``migrations/<version>_<name>.cql``, where the comment says what the step does), once:
the version is recorded after both. Each step is idempotent, so a run cut short can be repeated.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence

__all__ = ["DATA_STEPS", "LEGACY_PAGE", "SyncCql", "feed_served_into_pages"]

#: page number of the one feed_pages row holding what a feed served before migration 2
LEGACY_PAGE = -1


class SyncCql(Protocol):
    """What a step needs of :class:`clipstream.storage.cql.Cql` (which runs the steps)."""

    def execute_sync(self, cql: str, params: Sequence[Any] = ()) -> list[Any]: ...


def feed_served_into_pages(cql: SyncCql) -> int:
    """Migration 5: each user's feed_served rows as one feed_pages row at :data:`LEGACY_PAGE`;
    returns the users copied. Rewriting the same row from the same rows makes a rerun harmless."""
    served: dict[int, list[int]] = {}
    for row in cql.execute_sync("SELECT user_id, video_id FROM feed_served"):
        served.setdefault(row.user_id, []).append(row.video_id)
    for user, videos in served.items():
        cql.execute_sync("INSERT INTO feed_pages (user_id, page, video_ids) VALUES (%s, %s, %s)",
                         (user, LEGACY_PAGE, sorted(videos)))
    return len(served)


#: migration version → its data step
DATA_STEPS: dict[int, Callable[[SyncCql], object]] = {5: feed_served_into_pages}
