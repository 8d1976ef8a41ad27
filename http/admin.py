"""The operator's view over HTTP: ``GET /v1/admin/actors`` (admin role) and the ``/admin/actors`` page.

The data comes from every live node over NATS (:mod:`clipstream.bus.status`); the page is
static and fetches the JSON with the operator's token, so the page itself carries no data and needs
no cookie or server-side session.
"""

from __future__ import annotations

import time

import msgspec
import nats.errors
from litestar import Response, get
from litestar.exceptions import PermissionDeniedException

from clipstream.bus.status import NodeStatus, ShardStatus
from clipstream.http.admin_page import PAGE_HEADERS, PAGE_HTML
from clipstream.http.bootstrap import CurrentUser, ServicesDep
from clipstream.http.errors import ServiceUnavailable, errors

__all__ = ["ADMIN_HANDLERS", "ActorsResponse", "KindSummary", "summarize"]


class GuardianNode(msgspec.Struct, frozen=True, kw_only=True):
    """A node's Guardian and the shard actors it supervises."""

    address: str
    pid: int
    session: int
    poison: int
    shards: list[ShardStatus]


class NodeTree(msgspec.Struct, frozen=True, kw_only=True):
    node: str
    guardian: GuardianNode


class KindSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One entity kind over every node: is every partition owned, and how much is in memory."""

    kind: str
    shards: int
    partitions_owned: int
    entities: int
    dirty: int
    backlog: int
    processed: int
    restarts: int


class ActorsResponse(msgspec.Struct, frozen=True, kw_only=True):
    nodes: list[NodeTree]
    kinds: list[KindSummary]
    #: how long gathering the nodes' answers took (the collection window dominates)
    gathered_ms: float


def summarize(statuses: list[NodeStatus]) -> list[KindSummary]:
    """Totals per kind; ``partitions_owned`` counts distinct partitions of running-or-not shards."""
    by_kind: dict[str, list[ShardStatus]] = {}
    for status in statuses:
        for shard in status.shards:
            by_kind.setdefault(shard.kind, []).append(shard)
    return [
        KindSummary(
            kind=kind,
            shards=len(shards),
            partitions_owned=len({p for s in shards for p in s.partitions}),
            entities=sum(s.entities for s in shards),
            dirty=sum(s.dirty for s in shards),
            backlog=sum(s.backlog for s in shards),
            processed=sum(s.processed for s in shards),
            restarts=sum(s.restarts for s in shards),
        )
        for kind, shards in sorted(by_kind.items())
    ]


def _tree(status: NodeStatus) -> NodeTree:
    g = status.guardian
    return NodeTree(
        node=status.node,
        guardian=GuardianNode(address=g.address, pid=g.pid, session=g.session, poison=g.poison, shards=status.shards),
    )


@get("/v1/admin/actors", tags=["admin"], responses=errors(401, 403, 503))
async def actors(svc: ServicesDep, me: CurrentUser) -> ActorsResponse:
    """The supervision tree of every live node: node → guardian → shard actors (admin role only)."""
    if not me.is_admin:
        raise PermissionDeniedException("admin role required")
    started = time.monotonic()
    try:
        statuses = await svc.node_status.get()
    except nats.errors.Error as exc:
        raise ServiceUnavailable(f"cannot reach the nodes over NATS: {type(exc).__name__}") from exc
    return ActorsResponse(
        nodes=[_tree(s) for s in statuses],
        kinds=summarize(statuses),
        gathered_ms=round((time.monotonic() - started) * 1000, 1),
    )


@get("/admin/actors", exclude_from_auth=True, include_in_schema=False, media_type="text/html")
async def actors_page() -> Response[str]:
    """The static page: it holds no data, so it needs no token; its script fetches the JSON above."""
    return Response(PAGE_HTML, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


ADMIN_HANDLERS = [actors, actors_page]
