"""Subjects of a kind's partitions and the request/reply envelope of entity queries.

A query for entity ``key`` of kind ``k`` is a core-NATS request on
``<prefix>.rpc.<k>.<partition_of(key)>`` whose payload is :class:`Query` as JSON, e.g.
``{"key": 42, "body": {"page": 1}}``; the owning shard answers with the kind's reply bytes, or with
``{"error": "..."}`` and the header ``Clipstream-Error: 1``.
"""

from __future__ import annotations

from typing import Any

import msgspec
from nats.aio.client import Client as NATS

from clipstream.bus.codec import partition_of
from clipstream.bus.topology import Topology

__all__ = [
    "ERROR_HEADER",
    "Query",
    "QueryError",
    "QueryFailed",
    "ask_entity",
    "encode_error",
    "partition_subject",
    "rpc_subject",
]

ERROR_HEADER = "Clipstream-Error"


class Query(msgspec.Struct, frozen=True):
    """The envelope of an entity query: the entity key and the kind-specific body (raw JSON)."""

    key: int
    body: msgspec.Raw = msgspec.Raw(b"null")


class QueryFailed(msgspec.Struct, frozen=True):
    """The reply when the shard could not answer."""

    error: str


class QueryError(RuntimeError):
    """The owning shard answered a query with an error."""


_query_encoder = msgspec.json.Encoder()


def partition_subject(topology: Topology, kind: str, partition: int) -> str:
    """The JetStream subject of one partition of a kind (``counter`` → ``<prefix>.counter.<p>``)."""
    return f"{topology.prefix}.{kind}.{partition}"


def rpc_subject(topology: Topology, kind: str, partition: int) -> str:
    """The request/reply subject of one partition of a kind."""
    return f"{topology.prefix}.rpc.{kind}.{partition}"


def encode_error(reason: str) -> bytes:
    return _query_encoder.encode(QueryFailed(reason))


async def ask_entity(
    nc: NATS, topology: Topology, kind: str, key: int, body: Any, partitions: int, timeout: float = 2.0
) -> bytes:
    """Send a query to the shard owning ``key`` and return its reply bytes; raises QueryError."""
    payload = _query_encoder.encode(Query(key, msgspec.Raw(_query_encoder.encode(body))))
    reply = await nc.request(rpc_subject(topology, kind, partition_of(key, partitions)), payload, timeout=timeout)
    if reply.headers and reply.headers.get(ERROR_HEADER):
        raise QueryError(msgspec.json.decode(reply.data, type=QueryFailed).error)
    return reply.data
