"""Typed settings for every subsystem, read from ``CLIPSTREAM_<SECTION>_<FIELD>`` environment variables.

Settings are loaded once per process by :func:`get_settings` (cached) and never at import time, so a
test or a process can set its environment first. Every field has a local default that matches the
stack started by ``clipstream stack up``; a wrong value fails at start with a message naming the
variable.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Mapping

import msgspec
from msgspec import Meta

__all__ = [
    "ENV_PREFIX",
    "ActorSettings",
    "CqlSettings",
    "HttpSettings",
    "MediaSettings",
    "MinioSettings",
    "NatsSettings",
    "RedisSettings",
    "Settings",
    "SettingsError",
    "StackSettings",
    "env_variables",
    "get_settings",
    "load_settings",
]

ENV_PREFIX = "CLIPSTREAM_"


def _doc(text: str, **constraints: Any) -> Meta:
    return Meta(description=text, **constraints)


Port = Annotated[int, _doc("TCP port", ge=1, le=65535)]


class RedisSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Redis: hot cache of video cards, counts and trending; rate limits."""

    url: Annotated[str, _doc("Redis URL (redis://host:port/db)")] = "redis://127.0.0.1:6379/0"
    timeout: Annotated[float, _doc("seconds before a Redis call gives up", gt=0)] = 2.0


class NatsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """NATS with JetStream: the message bus between the API, the actor nodes and media workers."""

    url: Annotated[str, _doc("NATS server URL(s), comma separated")] = "nats://127.0.0.1:4222"
    replicas: Annotated[int, _doc("JetStream stream replicas", ge=1, le=5)] = 1
    subject_prefix: Annotated[str, _doc("prefix of every clipstream subject")] = "cs"
    minio_subject: Annotated[str, _doc("subject MinIO publishes upload events to")] = "cs.minio.events"
    timeout: Annotated[float, _doc("seconds before a request/publish gives up", gt=0)] = 5.0


class CqlSettings(msgspec.Struct, frozen=True, kw_only=True):
    """CQL (ScyllaDB in production, Cassandra 5 locally): the source of truth."""

    hosts: Annotated[str, _doc("contact points, comma separated")] = "127.0.0.1"
    port: Port = 9042
    keyspace: Annotated[str, _doc("keyspace name", pattern=r"^[a-z][a-z0-9_]{0,47}$")] = "clipstream"
    replication_factor: Annotated[int, _doc("SimpleStrategy replication factor", ge=1)] = 1
    timeout: Annotated[float, _doc("seconds before a CQL request gives up", gt=0)] = 5.0
    username: Annotated[str, _doc("CQL user (empty: no authentication)")] = ""
    password: Annotated[str, _doc("CQL password")] = ""

    @property
    def contact_points(self) -> list[str]:
        return [h.strip() for h in self.hosts.split(",") if h.strip()]


class MinioSettings(msgspec.Struct, frozen=True, kw_only=True):
    """MinIO / S3: raw uploads and processed media."""

    endpoint: Annotated[str, _doc("host:port of the S3 API")] = "127.0.0.1:9000"
    public_endpoint: Annotated[
        str, _doc("host:port clients use to reach the S3 API (presigned URLs are signed for it); empty: endpoint")
    ] = ""
    access_key: Annotated[str, _doc("S3 access key (local default only: set a real one)")] = "clipstream"
    secret_key: Annotated[str, _doc("S3 secret key (local default only: set a real one)")] = (
        "clipstream-local-secret"
    )
    secure: Annotated[bool, _doc("use HTTPS to reach the S3 API")] = False
    region: Annotated[str, _doc("S3 region")] = "us-east-1"
    uploads_bucket: Annotated[str, _doc("bucket receiving raw uploads")] = "uploads"
    media_bucket: Annotated[str, _doc("bucket holding processed videos and thumbnails")] = "media"
    public_base_url: Annotated[
        str, _doc("CDN/public base URL of the media bucket; empty: presigned GET URLs")
    ] = ""
    cors_allow_origin: Annotated[
        str, _doc("origins a browser may PUT uploads and GET media from, comma separated, * any: MinIO's "
                  "MINIO_API_CORS_ALLOW_ORIGIN, set by `clipstream stack up` (a presigned URL's signature, "
                  "not the origin, is what authorises the request)")
    ] = "*"
    upload_url_ttl: Annotated[int, _doc("seconds a presigned upload URL stays valid", ge=60)] = 900
    media_url_ttl: Annotated[int, _doc("seconds a presigned media URL stays valid", ge=60)] = 6 * 3600


class ActorSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The actor node: shard actors hosting UserFeed and VideoCounter entities."""

    partitions: Annotated[int, _doc("number of entity partitions (fixed for a deployment)", ge=1, le=4096)] = 64
    shards: Annotated[int, _doc("shard actors per node and kind", ge=1, le=64)] = 2
    admin_port: Annotated[int, _doc("Thespian admin port of the node", ge=1, le=65535)] = 19500
    flush_interval: Annotated[float, _doc("seconds between write-behind flushes", gt=0)] = 0.25
    idle_passivate: Annotated[float, _doc("seconds of idle before an entity is passivated", gt=0)] = 300.0
    max_entities: Annotated[int, _doc("entities a shard holds before passivating the oldest", ge=100)] = 2_000_000
    memory_budget_mb: Annotated[
        float, _doc("estimated MB of entities a shard process holds before passivating the least recently used", gt=0)
    ] = 512.0
    lease_ttl: Annotated[
        float, _doc("seconds a partition lease lives unrenewed: how fast a dead node's partitions move", ge=1)
    ] = 6.0
    fetch_batch: Annotated[int, _doc("most messages one pull request of a partition returns", ge=1, le=10_000)] = 500
    max_ack_pending: Annotated[
        int, _doc("unacked messages a partition may have out: the bound of a shard's in-flight work", ge=1)
    ] = 20_000
    ack_wait: Annotated[
        float, _doc("seconds JetStream waits for an ack before redelivering (bounds a stalled flush)", ge=1)
    ] = 30.0
    restart_backoff: Annotated[float, _doc("first restart delay of a crashed shard (doubles)", gt=0)] = 0.5
    restart_budget: Annotated[int, _doc("restarts allowed per shard within ten minutes", ge=1)] = 5
    node_name: Annotated[str, _doc("name of this node (empty: hostname-pid)")] = ""


class HttpSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The Litestar API."""

    host: Annotated[str, _doc("address the API listens on")] = "127.0.0.1"
    port: Port = 8000
    workers: Annotated[int, _doc("API worker processes", ge=1, le=64)] = 2
    jwt_secret: Annotated[str, _doc("HMAC secret signing tokens and cursors (set a real one)", min_length=32)] = (
        "clipstream-local-dev-secret-change-me"
    )
    token_ttl: Annotated[int, _doc("seconds an access token stays valid", ge=60)] = 3600
    refresh_ttl: Annotated[
        int, _doc("seconds a refresh token stays valid unused (each refresh issues a new one)", ge=300)
    ] = 30 * 86400
    admin_usernames: Annotated[
        str, _doc("comma separated usernames given the admin role (empty: nobody is admin)")
    ] = ""
    max_body_bytes: Annotated[int, _doc("largest request body accepted", ge=1024)] = 64 * 1024
    feed_item_ttl: Annotated[
        float, _doc("seconds an API worker reuses a hydrated feed item (like counts that old at most; 0: off)", ge=0)
    ] = 1.0
    fast_paths: Annotated[
        bool, _doc("answer ordinary GET /v1/feed and like requests outside Litestar's per-request "
                   "machinery (same checks and answers; see http/fastpath.py)")
    ] = True
    # Rate limits (0: off). Defaults are far above what a client or a benchmark does, so only a
    # deployment that lowers them sees a 429. Counted per worker, summed through Redis (http/ratelimit.py).
    rate_limit_reads: Annotated[int, _doc("GET requests per minute per user (0: no limit)", ge=0)] = 60_000
    rate_limit_writes: Annotated[int, _doc("non-GET requests per minute per user (0: no limit)", ge=0)] = 12_000
    rate_limit_auth: Annotated[int, _doc("login/register requests per minute per IP (0: no limit)", ge=0)] = 6_000
    rate_limit_ip: Annotated[int, _doc("other requests per minute per IP, any user (0: no limit)", ge=0)] = 600_000
    rate_limit_sync: Annotated[
        float, _doc("seconds between syncs of a worker's rate-limit counts with Redis", gt=0, le=10)
    ] = 0.1
    rate_limit_prefix: Annotated[str, _doc("Redis key prefix of the rate-limit counters")] = "cs:rl"


class MediaSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Media workers: validation and transcoding of uploads."""

    max_upload_bytes: Annotated[int, _doc("largest upload accepted", ge=1)] = 512 * 1024 * 1024
    max_duration: Annotated[float, _doc("longest video accepted, seconds", gt=0)] = 180.0
    max_height: Annotated[int, _doc("largest output height in pixels (portrait long side)", ge=144)] = 1280
    formats: Annotated[str, _doc("accepted upload formats, comma separated")] = "mp4,mov,webm"
    ffmpeg: Annotated[str, _doc("ffmpeg binary")] = "ffmpeg"
    ffprobe: Annotated[str, _doc("ffprobe binary")] = "ffprobe"
    preset: Annotated[str, _doc("x264 preset")] = "veryfast"
    max_video_kbps: Annotated[
        int, _doc("cap of the video bitrate, kbit/s (x264's VBV over CRF: plain scenes stay below it), so a "
                  "1.6 Mbit/s link plays a video with its audio without stalling; 0: CRF alone", ge=0)
    ] = 1200
    low_max_height: Annotated[
        int, _doc("long side in pixels of the low rendition made beside the main one, for slow links "
                  "(the watch page picks it when its measured throughput is short); 0: none", ge=0)
    ] = 640
    low_video_kbps: Annotated[
        int, _doc("cap of the low rendition's video bitrate, kbit/s (with its 64 kbit/s audio ~390 kbit/s: "
                  "a 1.6 Mbit/s link loads it at 4x real time, the next cards' preloads beside it)", ge=50)
    ] = 300
    workers: Annotated[int, _doc("concurrent transcodes per media process", ge=1, le=16)] = 1

    @property
    def format_set(self) -> frozenset[str]:
        return frozenset(f.strip().lower() for f in self.formats.split(",") if f.strip())


def _default_state_dir() -> str:
    return str(Path(os.environ.get("XDG_STATE_HOME", Path.home() / ".local" / "state")) / "clipstream")


def _default_cache_dir() -> str:
    return str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clipstream")


class StackSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The local service stack (`clipstream stack`)."""

    state_dir: Annotated[str, _doc("data, logs and pid files of the local stack")] = msgspec.field(
        default_factory=_default_state_dir
    )
    cache_dir: Annotated[str, _doc("downloads and builds of the local stack")] = msgspec.field(
        default_factory=_default_cache_dir
    )
    cassandra_heap: Annotated[str, _doc("JVM heap of the local Cassandra")] = "1G"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """All settings of a clipstream process."""

    redis: RedisSettings = RedisSettings()
    nats: NatsSettings = NatsSettings()
    cql: CqlSettings = CqlSettings()
    minio: MinioSettings = MinioSettings()
    actors: ActorSettings = ActorSettings()
    http: HttpSettings = HttpSettings()
    media: MediaSettings = MediaSettings()
    stack: StackSettings = StackSettings()


class SettingsError(ValueError):
    """A setting from the environment is invalid; the message names the variable."""


def _section_types() -> dict[str, type[msgspec.Struct]]:
    hints = msgspec.structs.fields(Settings)
    return {f.name: f.type for f in hints}


def env_variables() -> list[tuple[str, str, Any, str]]:
    """Every variable: (name, type, default, description), for docs and ``clipstream config``."""
    out = []
    for section, typ in _section_types().items():
        for f in msgspec.structs.fields(typ):
            desc = ""
            base = f.type
            meta = getattr(f.type, "__metadata__", ())
            for m in meta:
                if isinstance(m, Meta) and m.description:
                    desc = m.description
            if meta:
                base = f.type.__origin__
            default = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
            out.append((f"{ENV_PREFIX}{section.upper()}_{f.name.upper()}", base.__name__, default, desc))
    return out


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build settings from ``environ`` (default: the process environment); raises SettingsError."""
    environ = os.environ if environ is None else environ
    sections = _section_types()
    raw: dict[str, dict[str, str]] = {}
    known = {name for name, *_ in env_variables()}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        if key not in known:
            raise SettingsError(f"{key} is not a clipstream setting (see `clipstream config`)")
        section, _, field = key[len(ENV_PREFIX) :].lower().partition("_")
        raw.setdefault(section, {})[field] = value
    built: dict[str, Any] = {}
    for section, values in raw.items():
        try:
            built[section] = msgspec.convert(values, sections[section], strict=False)
        except msgspec.ValidationError as exc:
            # msgspec says "... - at `$.port`": point at the variable instead.
            msg = str(exc)
            var = ENV_PREFIX + section.upper()
            if " - at `$." in msg:
                msg, _, path = msg.partition(" - at `$.")
                var += "_" + path.rstrip("`").upper()
            raise SettingsError(f"{var}: {msg} (got {environ.get(var, '')!r})") from None
    return Settings(**built)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, loaded from the environment on first use."""
    return load_settings()
