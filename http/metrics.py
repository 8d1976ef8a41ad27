"""Prometheus metrics at ``/metrics``: the API's request latencies, and the nodes' shard numbers.

HTTP: one histogram observation per request (method, route template, status), by a plain ASGI
middleware. granian runs the API as several worker processes and a scrape reaches one of them, so
:func:`clipstream.http.server.run_api` puts prometheus-client in multiprocess mode (each worker
writes its samples to files in ``PROMETHEUS_MULTIPROC_DIR``; the scraped worker sums them all).

Nodes: no extra port. The scraped worker gathers the supervision trees over NATS (cached for a
second, shared with ``/v1/admin/actors``) and renders them as gauges and counters labelled by node,
kind and shard (the feed's candidate sources: by node and source, summed over the node's feed
shards). Counters restart from zero with a shard process, which Prometheus' ``rate()``
treats as a counter reset; restarts are counted by the Guardian and survive them.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

import structlog
from litestar import Response, get
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from clipstream.bus.status import NodeStatus, per_source
from clipstream.bus.timings import BUCKETS as STAGE_BUCKETS
from clipstream.bus.timings import StageHist
from clipstream.http.bootstrap import ServicesDep

__all__ = ["API_GC_FULL_SECONDS", "API_GC_SECONDS", "API_LOOP_LAG_SECONDS", "BUS_WAIT_SECONDS", "METRICS_HANDLERS", "NodeCollector",
           "RequestMetricsMiddleware", "REQUEST_SECONDS", "feed_counters", "render_nodes", "stage_buckets",
           "watch_worker"]

REQUEST_SECONDS = Histogram(
    "clipstream_http_request_duration_seconds",
    "Time from request start to the end of the response, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


_STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: the API's wait on the bus: a feed shard's reply, JetStream's ack of a like
BUS_WAIT_SECONDS = Histogram(
    "clipstream_api_bus_wait_seconds",
    "Time an API worker waits on NATS for one call: a feed shard's reply (op=feed) or JetStream's ack "
    "of a publish (op=publish).", ["op"], buckets=_STAGE_BUCKETS)
API_LOOP_LAG_SECONDS = Histogram(
    "clipstream_api_loop_lag_seconds",
    "How late an API worker's event loop runs a timer due every 20 ms (what a ready request waits behind).",
    buckets=_STAGE_BUCKETS)
API_GC_SECONDS = Histogram(
    "clipstream_api_gc_pause_seconds", "Pause of each garbage collection in an API worker.", buckets=_STAGE_BUCKETS)
API_GC_FULL_SECONDS = Histogram(
    "clipstream_api_gc_full_pause_seconds", "Pause of each full (generation 2) collection in an API worker.",
    buckets=_STAGE_BUCKETS)


def watch_worker() -> "asyncio.Task[None]":
    """In an API worker's loop: GC pauses and loop lag into their histograms, until cancelled."""
    import asyncio

    from clipstream.bus.timings import gc_timer, loop_lag

    class _Into:  # the timings' Hist interface over a prometheus histogram
        __slots__ = ("observe",)

        def __init__(self, h: Histogram) -> None:
            self.observe = h.observe

    callback = gc_timer(_Into(API_GC_SECONDS), _Into(API_GC_FULL_SECONDS))  # type: ignore[arg-type]
    task = asyncio.get_running_loop().create_task(loop_lag(_Into(API_LOOP_LAG_SECONDS)))  # type: ignore[arg-type]

    def _done(_: object) -> None:
        import gc

        if callback in gc.callbacks:
            gc.callbacks.remove(callback)

    task.add_done_callback(_done)
    return task


def stage_buckets(h: StageHist) -> list[tuple[str, float]]:
    """A shard's stage histogram as Prometheus buckets: cumulative counts by ``le``, ``+Inf`` last."""
    out, total = [], 0
    for bound, n in zip((*map(str, STAGE_BUCKETS), "+Inf"), h.counts):
        total += n
        out.append((bound, total))
    return out


class RequestMetricsMiddleware:
    """Times every HTTP request; the route is the matched path template, so ids do not explode the
    label set."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("path_template") or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(time.perf_counter() - started)


class NodeCollector(Collector):
    """The gathered node statuses as Prometheus metric families."""

    def __init__(self, statuses: list[NodeStatus]) -> None:
        self.statuses = statuses

    def collect(self) -> Iterable[Metric]:
        labels = ["node", "kind", "shard"]

        def family(cls: Any, name: str, doc: str) -> Any:
            return cls(name, doc, labels=labels)

        processed = family(CounterMetricFamily, "clipstream_shard_messages_processed", "Messages applied by the shard process.")
        flushes = family(CounterMetricFamily, "clipstream_shard_flushes", "Write-behind flushes completed.")
        flush_seconds = family(CounterMetricFamily, "clipstream_shard_flush_seconds",
                               "Seconds spent in flushes (job taken to written and acked); divide by flushes for the mean.")
        last_latency = family(GaugeMetricFamily, "clipstream_shard_last_flush_latency_seconds", "Latency of the latest flush.")
        flush_age = family(GaugeMetricFamily, "clipstream_shard_last_flush_age_seconds", "Seconds since the latest flush (-1: none).")
        restarts = family(CounterMetricFamily, "clipstream_shard_restarts", "Restarts of the shard slot by its Guardian.")
        dead = family(CounterMetricFamily, "clipstream_shard_dead_letters", "Messages moved to the dead-letter subject.")
        entities = family(GaugeMetricFamily, "clipstream_shard_entities", "Entities active in memory.")
        dirty = family(GaugeMetricFamily, "clipstream_shard_dirty_entities", "Entities changed since their last flush.")
        backlog = family(GaugeMetricFamily, "clipstream_shard_backlog", "Messages waiting for the shard.")
        running = family(GaugeMetricFamily, "clipstream_shard_running", "1 if the shard is running.")
        by_kind = GaugeMetricFamily("clipstream_entities", "Entities active in memory, by kind, over every node.", labels=["kind"])
        kinds: dict[str, int] = {}
        for status in self.statuses:
            for s in status.shards:
                key = [status.node, s.kind, str(s.index)]
                processed.add_metric(key, s.processed)
                flushes.add_metric(key, s.flushes)
                flush_seconds.add_metric(key, s.flush_seconds)
                last_latency.add_metric(key, s.last_flush_latency)
                flush_age.add_metric(key, s.last_flush_age)
                restarts.add_metric(key, s.restarts)
                dead.add_metric(key, s.dead_letters)
                entities.add_metric(key, s.entities)
                dirty.add_metric(key, s.dirty)
                backlog.add_metric(key, s.backlog)
                running.add_metric(key, 1 if s.state == "running" else 0)
                kinds[s.kind] = kinds.get(s.kind, 0) + s.entities
        for kind, n in sorted(kinds.items()):
            by_kind.add_metric([kind], n)
        nodes = GaugeMetricFamily("clipstream_nodes", "Nodes that answered the status request.")
        nodes.add_metric([], len(self.statuses))
        yield from (processed, flushes, flush_seconds, last_latency, flush_age, restarts, dead, entities, dirty,
                    backlog, running, by_kind, nodes)
        yield self._stages()
        yield from self._feed_sources()

    def _stages(self) -> Metric:
        """Each shard's per-stage latency histograms (:mod:`clipstream.bus.timings`)."""
        family = HistogramMetricFamily(
            "clipstream_shard_stage_seconds",
            "Per-stage latencies inside a shard process: lock_wait, query, apply_hold, tick_hold, flush, "
            "store_write, load, loop_lag, gc (since the shard process started).",
            labels=["node", "kind", "shard", "stage"])
        for status in self.statuses:
            for s in status.shards:
                for stage, h in sorted(s.stages.items()):
                    family.add_metric([status.node, s.kind, str(s.index), stage], stage_buckets(h), h.sum)
        return family

    def _feed_sources(self) -> Iterable[Metric]:
        """The online evaluation of the feed's candidate sources, per node: its feed shards'
        counters summed. Not per shard: a source's rate says how the ranking does, not how one
        shard's users do, and five sources per shard would multiply the series for nothing. The
        price: a restart of one of a node's feed shards lowers the sum without zeroing it, and
        ``rate()`` takes any drop for a reset, so it overstates the increase over that one scrape."""
        by_source = ["node", "source"]
        impressions = CounterMetricFamily("clipstream_feed_impressions",
                                          "Videos served in feed pages, by candidate source.", labels=by_source)
        likes = CounterMetricFamily("clipstream_feed_source_likes",
                                    "Likes of served videos, by the candidate source that served them "
                                    "(counted while the video is among the user's latest 20 served).", labels=by_source)
        ltr = GaugeMetricFamily("clipstream_feed_like_through_rate",
                                "Likes per impression, by candidate source, since the node's feed shard "
                                "processes started (sources with impressions only).", labels=by_source)
        new_impressions = CounterMetricFamily("clipstream_feed_new_video_impressions",
                                              "Impressions of the candidate pool's newest videos "
                                              "(what the exploration floor counts).", labels=["node"])
        refresh_errors = CounterMetricFamily("clipstream_feed_pool_refresh_errors",
                                             "Candidate pool refreshes that failed (the last pool kept serving).",
                                             labels=["node"])
        for status in self.statuses:
            totals = feed_counters(status)
            if not totals:
                continue
            for source, (shown, liked) in per_source(totals).items():
                impressions.add_metric([status.node, source], shown)
                likes.add_metric([status.node, source], liked)
                if shown > 0:
                    ltr.add_metric([status.node, source], liked / shown)
            new_impressions.add_metric([status.node], totals.get("new_video_impressions", 0))
            refresh_errors.add_metric([status.node], totals.get("pool_refresh_errors", 0))
        yield from (impressions, likes, ltr, new_impressions, refresh_errors)


def feed_counters(status: NodeStatus) -> dict[str, int]:
    """The counters of a node's feed shards, summed by name ({}: no feed shard reported any)."""
    totals: dict[str, int] = {}
    for s in status.shards:
        if s.kind == "feed":
            for name, n in s.counters.items():
                totals[name] = totals.get(name, 0) + n
    return totals


def render_nodes(statuses: list[NodeStatus]) -> bytes:
    """Prometheus text of the node metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(statuses))
    return generate_latest(registry)


def _http_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return registry
    return REGISTRY


@get("/metrics", exclude_from_auth=True, include_in_schema=False)
async def metrics(svc: ServicesDep) -> Response[bytes]:
    """Prometheus text format; unauthenticated like every scrape target: keep it off the public edge."""
    try:
        statuses = await svc.node_status.get()
    except Exception as exc:  # NATS down: the HTTP metrics still matter, clipstream_nodes 0 says the rest
        structlog.get_logger("clipstream.http.metrics").warning("node status unavailable", error=repr(exc))
        statuses = []
    body = generate_latest(_http_registry()) + render_nodes(statuses)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


METRICS_HANDLERS = [metrics]
