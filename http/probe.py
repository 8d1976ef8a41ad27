"""A cheap liveness check of the object store, for requests that hand out presigned URLs.

Presigning is local computation, so a presigned URL comes out fine while MinIO is down and the
client's PUT then fails. Before creating an upload the API asks MinIO once, and trusts a success for
a couple of seconds so a burst of uploads costs one round trip.
"""

from __future__ import annotations

import asyncio
import time

from clipstream.storage.errors import StorageUnavailable
from clipstream.storage.objects import ObjectStore

__all__ = ["ObjectStoreProbe"]


class ObjectStoreProbe:
    """Raises StorageUnavailable unless the uploads bucket answered recently."""

    __slots__ = ("objects", "timeout", "trust_seconds", "_ok_until")

    def __init__(self, objects: ObjectStore, timeout: float = 2.0, trust_seconds: float = 2.0) -> None:
        self.objects = objects
        self.timeout = timeout
        self.trust_seconds = trust_seconds
        self._ok_until = 0.0

    async def ensure_up(self) -> None:
        if time.monotonic() < self._ok_until:
            return
        try:
            exists = await asyncio.wait_for(
                asyncio.to_thread(self.objects.client.bucket_exists, self.objects.uploads), self.timeout
            )
        except Exception as exc:  # connection refused, timeouts, S3 errors: all mean "not now"
            raise StorageUnavailable(f"object store: {exc!r}") from exc
        if not exists:
            raise StorageUnavailable(f"object store: bucket {self.objects.uploads!r} is missing")
        self._ok_until = time.monotonic() + self.trust_seconds
