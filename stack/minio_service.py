"""MinIO built by `go install`, publishing object-created events to NATS JetStream; creates the buckets."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from clipstream.stack import pins
from clipstream.stack.base import Service, StackError
from clipstream.stack.installers import go_binary, go_install

__all__ = ["MINIO_NATS_ARN", "MinioService", "minio_client"]

# The notification target configured below through MINIO_NOTIFY_NATS_*_PRIMARY.
MINIO_NATS_ARN = "arn:minio:sqs::PRIMARY:nats"
UPLOAD_EVENTS = ["s3:ObjectCreated:*"]


def _without_region(arn: str) -> str:
    """MinIO answers with the site region filled in (arn:minio:sqs:us-east-1:PRIMARY:nats)."""
    parts = arn.split(":")
    return ":".join(parts[:3] + [""] + parts[4:]) if len(parts) == 6 else arn


def minio_client(settings, timeout: float = 5.0):  # noqa: ANN001, ANN201 - settings: Settings, returns minio.Minio
    """A client of the local MinIO that fails fast (no retries): health checks and setup."""
    from clipstream.storage.objects import make_minio

    return make_minio(settings.minio, timeout=timeout, retries=0)


class MinioService(Service):
    name = "minio"
    deps = ("nats",)
    start_timeout = 60.0
    stop_timeout = 20.0

    def _port(self) -> int:
        return int(self.settings.minio.endpoint.rpartition(":")[2] or 9000)

    def _console_port(self) -> int:
        return pins.shifted(pins.MINIO_CONSOLE_PORT, self._port(), pins.DEFAULT_MINIO_PORT)

    def ports(self) -> list[int]:
        return [self._port(), self._console_port()]

    def address(self) -> str:
        return f"{pins.HOST}:{self._port()} (console {pins.HOST}:{self._console_port()})"

    @property
    def queue_dir(self) -> Path:
        return self.ctx.state_dir / "minio-events-queue"

    def installed(self) -> bool:
        return go_binary(self.ctx, "minio", pins.MINIO_VERSION) is not None

    def install(self) -> None:
        go_install(self.ctx, "minio", pins.MINIO_MODULE, pins.MINIO_VERSION)

    def command(self) -> tuple[list[str], dict[str, str]]:
        binary = go_binary(self.ctx, "minio", pins.MINIO_VERSION)
        if binary is None:
            raise StackError("minio: not installed")
        m, n = self.settings.minio, self.settings.nats
        nats_url = urlparse(n.url.split(",")[0].strip())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.queue_dir.mkdir(parents=True, exist_ok=True)
        env = {
            "MINIO_ROOT_USER": m.access_key,
            "MINIO_ROOT_PASSWORD": m.secret_key,
            "MINIO_SITE_REGION": m.region,
            "MINIO_UPDATE": "off",
            # The watch page PUTs uploads straight to presigned URLs from its own origin.
            "MINIO_API_CORS_ALLOW_ORIGIN": m.cors_allow_origin,
            "MINIO_NOTIFY_NATS_ENABLE_PRIMARY": "on",
            "MINIO_NOTIFY_NATS_ADDRESS_PRIMARY": f"{nats_url.hostname or pins.HOST}:{nats_url.port or 4222}",
            "MINIO_NOTIFY_NATS_SUBJECT_PRIMARY": n.minio_subject,
            "MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY": "on",
            "MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY": str(self.queue_dir),
        }
        argv = [str(binary), "server", str(self.data_dir), "--address", f"{pins.HOST}:{self._port()}",
                "--console-address", f"{pins.HOST}:{self._console_port()}"]
        return argv, env

    def check(self) -> str:
        buckets = minio_client(self.settings).list_buckets()
        return f"S3 API answers, {len(buckets)} bucket(s)"

    def after_healthy(self) -> str:
        from minio.notificationconfig import NotificationConfig, QueueConfig

        client = minio_client(self.settings, timeout=15.0)
        m = self.settings.minio
        created = []
        for bucket in (m.uploads_bucket, m.media_bucket):
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
                created.append(bucket)
        wanted = NotificationConfig(queue_config_list=[
            QueueConfig(queue=MINIO_NATS_ARN, events=UPLOAD_EVENTS, config_id="clipstream-uploads"),
        ])
        current = client.get_bucket_notification(m.uploads_bucket)
        have = [(_without_region(q.queue or ""), sorted(q.events)) for q in current.queue_config_list]
        if have != [(MINIO_NATS_ARN, UPLOAD_EVENTS)]:
            client.set_bucket_notification(m.uploads_bucket, wanted)
            note = f"set {m.uploads_bucket} notification {UPLOAD_EVENTS} -> {MINIO_NATS_ARN}"
        else:
            note = f"{m.uploads_bucket} notification already set"
        made = f"created buckets {created}" if created else "buckets exist"
        return f"{made}; {note}"

    def wipe_paths(self) -> list[Path]:
        return [self.data_dir, self.queue_dir]
