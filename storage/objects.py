"""Object storage (MinIO / S3): presigned URLs for clients, file transfer for media workers.

The minio client is blocking; transfers run in a worker thread. Presigning is local computation
(the region is configured, so the client never asks the server for it).
"""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import certifi
import urllib3
from minio import Minio
from minio.error import S3Error

from clipstream.config.settings import MinioSettings
from clipstream.storage.errors import NotFound, StorageUnavailable

__all__ = ["ObjectStore", "make_minio"]


def make_minio(settings: MinioSettings, timeout: float = 10.0, retries: int = 1, public: bool = False) -> Minio:
    """A client for the configured endpoint whose calls give up after ``timeout`` seconds per
    connect/read (the library default waits minutes), with at most ``retries`` quick retries on
    502/503/504. No network traffic until used; the known region keeps presigning local.

    ``public``: a client for the endpoint clients see, only for presigning. A presigned URL's
    signature covers its host, so it must be made for the address the client will send it to
    (in containers the servers reach MinIO as ``minio:9000``, a phone does not)."""
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout, 2.0), read=timeout),
        maxsize=16,
        cert_reqs="CERT_REQUIRED",
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=retries, backoff_factor=0.1, status_forcelist=[502, 503, 504]),
    )
    return Minio(
        (settings.public_endpoint or settings.endpoint) if public else settings.endpoint,
        access_key=settings.access_key,
        secret_key=settings.secret_key,
        secure=settings.secure,
        region=settings.region,
        http_client=http,
    )


class ObjectStore:
    """Uploads and media buckets, handed a client."""

    def __init__(self, client: Minio, uploads_bucket: str, media_bucket: str, public_base_url: str = "",
                 upload_ttl: int = 900, media_ttl: int = 6 * 3600, presigner: Minio | None = None) -> None:
        self.client = client
        #: signs the URLs handed to clients (the same client unless a public endpoint is set)
        self.presigner = presigner or client
        self.uploads = uploads_bucket
        self.media = media_bucket
        self.public_base_url = public_base_url.rstrip("/")
        self.upload_ttl = timedelta(seconds=upload_ttl)
        self.media_ttl = timedelta(seconds=media_ttl)

    @classmethod
    def from_settings(cls, settings: MinioSettings, client: Minio | None = None) -> "ObjectStore":
        presigner = make_minio(settings, public=True) if settings.public_endpoint else None
        return cls(client or make_minio(settings), settings.uploads_bucket, settings.media_bucket,
                   settings.public_base_url, settings.upload_url_ttl, settings.media_url_ttl, presigner)

    def upload_url(self, key: str) -> str:
        """A presigned PUT for exactly this key in the uploads bucket, expiring."""
        return self.presigner.presigned_put_object(self.uploads, key, expires=self.upload_ttl)

    def media_url(self, key: str) -> str:
        """Where clients fetch a processed object: the CDN/public base, or a presigned GET."""
        if self.public_base_url:
            return f"{self.public_base_url}/{key}"
        return self.presigner.presigned_get_object(self.media, key, expires=self.media_ttl)

    async def upload_size(self, key: str) -> int:
        """Size of an uploaded object; NotFound if the client has not uploaded it."""
        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.uploads, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                raise NotFound(key) from exc
            raise StorageUnavailable(str(exc)) from exc
        except Exception as exc:
            raise StorageUnavailable(f"object store: {exc}") from exc
        return int(stat.size or 0)

    async def download_upload(self, key: str, dest: Path) -> None:
        await self._call(self.client.fget_object, self.uploads, key, str(dest))

    async def store_media(self, key: str, src: Path, content_type: str) -> None:
        await self._call(self.client.fput_object, self.media, key, str(src), content_type=content_type)

    async def remove(self, bucket: str, keys: list[str]) -> None:
        for key in keys:
            await self._call(self.client.remove_object, bucket, key)

    async def _call(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise NotFound(str(args[1]) if len(args) > 1 else str(exc)) from exc
            raise StorageUnavailable(str(exc)) from exc
        except (OSError, Exception) as exc:  # urllib3 connection errors
            raise StorageUnavailable(f"object store: {exc}") from exc
