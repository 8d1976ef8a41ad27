"""Every pinned version and fixed port of the local stack, in one place.

Bumping a version here makes the next `clipstream stack up` install it next to the old one in the cache
(each install is keyed by its version) and restart nothing that already runs: `stack down && stack up`.
"""

from __future__ import annotations

# NATS server with JetStream: `go install <module>@<version>`.
NATS_MODULE = "github.com/nats-io/nats-server/v2"
NATS_VERSION = "v2.15.2"
NATS_DEBIAN_PACKAGE = "nats-server"  # fallback only, when `go install` fails

# MinIO community edition is distributed as source only: `go install` of a pinned pseudo-version
# (the module's @latest on 2026-02-12, commit 7aac2a2c5b7c).
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"

# Apache Cassandra (CQL stand-in for ScyllaDB), resolved with Maven from Maven Central.
CASSANDRA_GROUP = "org.apache.cassandra"
CASSANDRA_ARTIFACT = "cassandra-all"
CASSANDRA_VERSION = "5.0.9"
MAVEN_DEPENDENCY_PLUGIN_VERSION = "3.8.1"

# Debian packages (Debian 12 "bookworm" versions, whatever apt has: Debian pins them per release).
REDIS_DEBIAN_PACKAGE = "redis-server"
FFMPEG_DEBIAN_PACKAGE = "ffmpeg"
# headless browser of the admin page test (tests/e2e/test_operator_view.py)
CHROMIUM_DEBIAN_PACKAGE = "chromium"
WRK_DEBIAN_PACKAGE = "wrk"  # the HTTP load generator of `clipstream bench`

# The open-loop load generator of `clipstream bench` (constant arrival rate): `go install`.
VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.12.0"

# Ports that have no setting of their own (the client-facing ports come from clipstream.config). They
# move with their service's configured port, so a second stack on shifted ports does not collide:
# NATS 4222 -> monitor 8222, MinIO 9000 -> console 9001, CQL 9042 -> storage (gossip) 7000.
NATS_MONITOR_PORT = 8222
MINIO_CONSOLE_PORT = 9001
CASSANDRA_STORAGE_PORT = 7000
DEFAULT_NATS_PORT = 4222
DEFAULT_MINIO_PORT = 9000
DEFAULT_CQL_PORT = 9042


def shifted(fixed: int, configured: int, default: int) -> int:
    """``fixed`` moved by as much as ``configured`` differs from ``default``."""
    return fixed + configured - default

# Every service listens here only.
HOST = "127.0.0.1"
