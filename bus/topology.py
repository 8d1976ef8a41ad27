"""Every NATS subject of clipstream, and its JetStream streams, declared idempotently.

:class:`Topology` is the one place a subject is spelled; every process asks it. Subjects carry the
entity partition so that ownership of a partition is ownership of a subject:

    <p>.<kind>.<part>          entity messages of a kind's partition (JetStream):
    <p>.counter.<part>           like/unlike/view events for VideoCounter entities (keyed by video)
    <p>.feed.<part>              follow/unfollow/new-video events for UserFeed entities (keyed by user)
    <p>.video.<event>          video lifecycle: uploaded, ready, failed, deleted
    <p>.minio.events           object-created notifications published by MinIO
    <p>.dlq.<origin>           dead letters: undecodable or poison messages, with the reason
    <p>.rpc.<kind>.<part>      core-NATS queries of an entity (:mod:`clipstream.bus.rpc`)
    <p>.node.status            every node's supervision tree (:mod:`clipstream.bus.status`)
    <p>.node.<name>.status     one node's

where <p> is ``settings.nats.subject_prefix`` (default ``cs``).
"""

from __future__ import annotations

import msgspec
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from clipstream.config.settings import NatsSettings

__all__ = ["StreamSpec", "Topology", "ensure_streams"]


class StreamSpec(msgspec.Struct, frozen=True):
    """One JetStream stream: its name, subjects and retention."""

    name: str
    subjects: tuple[str, ...]
    max_age_s: float = 7 * 24 * 3600
    max_msg_size: int = 1024 * 1024
    work_queue: bool = False


class Topology(msgspec.Struct, frozen=True):
    """Subject and stream names derived from one prefix."""

    prefix: str = "cs"
    minio_subject: str = "cs.minio.events"

    @classmethod
    def from_settings(cls, nats: NatsSettings) -> "Topology":
        return cls(prefix=nats.subject_prefix, minio_subject=nats.minio_subject)

    def partition_subject(self, kind: str, partition: int | str) -> str:
        """The JetStream subject of one partition of an entity kind (``counter`` → ``<p>.counter.<part>``)."""
        return f"{self.prefix}.{kind}.{partition}"

    def counter_subject(self, partition: int | str) -> str:
        return self.partition_subject("counter", partition)

    def feed_subject(self, partition: int | str) -> str:
        return self.partition_subject("feed", partition)

    def rpc_subject(self, kind: str, partition: int | str) -> str:
        """The core-NATS request/reply subject of one partition of an entity kind."""
        return f"{self.prefix}.rpc.{kind}.{partition}"

    def status_subject(self, node: str | None = None) -> str:
        """Where nodes answer status requests: every node on the shared one, one node on its own."""
        return f"{self.prefix}.node.status" if node is None else f"{self.prefix}.node.{node}.status"

    def video_subject(self, event: str) -> str:
        return f"{self.prefix}.video.{event}"

    def dlq_subject(self, origin: str) -> str:
        """Where a consumer named ``origin`` puts the messages it could not handle."""
        return f"{self.prefix}.dlq.{origin}"

    @property
    def streams(self) -> tuple[StreamSpec, ...]:
        p = self.prefix.upper().replace(".", "_")
        return (
            StreamSpec(f"{p}_COUNTER", (f"{self.prefix}.counter.*",)),
            StreamSpec(f"{p}_FEED", (f"{self.prefix}.feed.*",)),
            StreamSpec(f"{p}_VIDEO", (f"{self.prefix}.video.*",)),
            StreamSpec(f"{p}_UPLOADS", (self.minio_subject,)),
            StreamSpec(f"{p}_DLQ", (f"{self.prefix}.dlq.>",), max_age_s=30 * 24 * 3600, max_msg_size=8 * 1024 * 1024),
        )

    def stream_for(self, subject: str) -> str:
        for spec in self.streams:
            for pattern in spec.subjects:
                if _matches(pattern, subject):
                    return spec.name
        raise KeyError(subject)


def _matches(pattern: str, subject: str) -> bool:
    pt, st = pattern.split("."), subject.split(".")
    for i, tok in enumerate(pt):
        if tok == ">":
            return len(st) > i
        if i >= len(st) or (tok != "*" and tok != st[i]):
            return False
    return len(pt) == len(st)


async def ensure_streams(js: JetStreamContext, topology: Topology, replicas: int = 1) -> None:
    """Create or update every stream; safe to call from every process at every start."""
    for spec in topology.streams:
        config = StreamConfig(
            name=spec.name,
            subjects=list(spec.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=spec.max_age_s,
            max_msg_size=spec.max_msg_size,
            num_replicas=replicas,
            duplicate_window=600.0,  # covers ack_wait plus a shard restart: replays de-duplicate
            discard=DiscardPolicy.OLD,
        )
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
