"""The operator's view without a running node: the terminal tree, the per-kind summary, the
Prometheus rendering and the admin page's Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re

import msgspec

from clipstream.bus.status import GuardianStatus, NodeStatus, ShardStatus
from clipstream.cli.actors import render_tree
from clipstream.http.admin import summarize
from clipstream.http.admin_page import PAGE_HEADERS, PAGE_HTML
from clipstream.http.metrics import render_nodes


def node(name: str, kind_parts: dict[str, list[tuple[int, ...]]]) -> NodeStatus:
    shards = [
        ShardStatus(kind=kind, index=i, partitions=parts, state="running", pid=100 + i, entities=10, processed=5,
                    restarts=i, last_flush_age=0.3, last_flush_latency=0.004, hot=(("383362528674226176", 4),))
        for kind, split in kind_parts.items() for i, parts in enumerate(split)
    ]
    return NodeStatus(node=name, guardian=GuardianStatus(address="A", pid=99, session=99), shards=shards)


STATUSES = [
    node("n1", {"counter": [(0, 2), (1,)], "feed": [(0, 1)]}),
    node("n2", {"counter": [(3,)], "feed": [(2, 3)]}),
]


def test_tree_lists_node_guardian_and_shards() -> None:
    text = render_tree(STATUSES)
    assert text.index("node n1") < text.index("guardian pid 99") < text.index("counter/0")
    assert re.search(r"counter/1\s+running\s+pid 101 +partitions 1 \[1\]", text)
    assert "partitions 2 [0,2]" in text and "partitions 2 [0-1]" in text
    assert "hot: 383362528674226176:4" in text
    assert render_tree([]) == "no node answered"


def test_summary_counts_distinct_partitions_over_nodes() -> None:
    kinds = {k.kind: k for k in summarize(STATUSES)}
    assert kinds["counter"].partitions_owned == 4 and kinds["counter"].shards == 3
    assert kinds["feed"].partitions_owned == 4 and kinds["feed"].entities == 20
    assert kinds["counter"].restarts == 1


def test_prometheus_text_has_node_gauges() -> None:
    text = render_nodes(STATUSES).decode()
    assert 'clipstream_shard_entities{kind="counter",node="n1",shard="0"} 10.0' in text
    assert 'clipstream_entities{kind="feed"} 20.0' in text
    assert "clipstream_nodes 2.0" in text
    assert "# TYPE clipstream_shard_restarts_total counter" in text


def test_page_csp_allows_exactly_its_inline_script() -> None:
    script = PAGE_HTML.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    csp = PAGE_HEADERS["Content-Security-Policy"]
    assert f"script-src 'sha256-{digest}'" in csp and "default-src 'none'" in csp
    assert "innerHTML" not in script  # data goes through textContent only


#: a feed shard's counters as FeedKind.counters() names them (trending has served nothing yet)
FEED_COUNTERS = {
    "impressions.following": 300, "impressions.hashtag": 1204, "impressions.author": 50, "impressions.trending": 0,
    "impressions.fresh": 40, "likes.following": 30, "likes.hashtag": 98, "likes.author": 0, "likes.trending": 0,
    "likes.fresh": 2, "new_video_impressions": 45, "new_videos_exposed": 12, "pool_refresh_errors": 1,
}


def with_feed_counters(status: NodeStatus) -> NodeStatus:
    shards = [msgspec.structs.replace(s, counters=FEED_COUNTERS) if s.kind == "feed" else s for s in status.shards]
    return msgspec.structs.replace(status, shards=shards)


def test_prometheus_text_sums_the_feed_sources_per_node() -> None:
    # n1 has two feed shards with counters, n2 one without (it has not reported yet): no series
    n1 = with_feed_counters(node("n1", {"counter": [(0,)], "feed": [(1, 2), (3,)]}))
    text = render_nodes([n1, STATUSES[1]]).decode()
    assert 'clipstream_feed_impressions_total{node="n1",source="hashtag"} 2408.0' in text
    assert 'clipstream_feed_source_likes_total{node="n1",source="hashtag"} 196.0' in text
    ltr = re.search(r'clipstream_feed_like_through_rate\{node="n1",source="hashtag"\} (\S+)', text)
    assert ltr and abs(float(ltr.group(1)) - 98 / 1204) < 1e-12
    assert 'clipstream_feed_impressions_total{node="n1",source="trending"} 0.0' in text
    assert 'clipstream_feed_like_through_rate{node="n1",source="trending"}' not in text  # no rate of 0/0
    assert 'clipstream_feed_new_video_impressions_total{node="n1"} 90.0' in text
    assert 'clipstream_feed_pool_refresh_errors_total{node="n1"} 2.0' in text
    assert 'node="n2"' not in "".join(line for line in text.splitlines() if line.startswith("clipstream_feed_"))
    assert "# TYPE clipstream_feed_impressions_total counter" in text
    assert "# TYPE clipstream_feed_like_through_rate gauge" in text
    assert "# HELP clipstream_feed_source_likes_total " in text


def test_tree_shows_a_feed_shards_sources() -> None:
    text = render_tree([with_feed_counters(STATUSES[0])])
    feed_at = text.index("feed/0")
    line = next(line for line in text.splitlines() if "sources:" in line)
    assert text.index(line) > feed_at and text.count("sources:") == 1  # under the feed shard, not the counters
    assert "following 300 imp 10.0% LTR · hashtag 1,204 imp 8.1% LTR · author 50 imp 0.0% LTR · trending 0 imp · " \
           "fresh 40 imp 5.0% LTR" in line
    assert "new videos 45 imp over 12 videos" in line and "pool refresh errors 1" in line
    assert "sources:" not in render_tree(STATUSES)  # no counters reported: no line


def test_a_status_without_counters_still_decodes() -> None:
    """A node of the version before answers without ``counters``: its shards decode with none."""
    raw = msgspec.to_builtins(with_feed_counters(STATUSES[0]))
    for shard in raw["shards"]:
        del shard["counters"]
    status = msgspec.json.decode(msgspec.json.encode(raw), type=NodeStatus)
    assert all(s.counters == {} for s in status.shards)


def test_prometheus_text_has_the_shards_stage_histograms() -> None:
    from clipstream.bus.timings import Timings

    t = Timings()
    for seconds in (0.0002, 0.004, 0.3):
        t["lock_wait"].observe(seconds)
    status = STATUSES[0]
    shards = [msgspec.structs.replace(status.shards[0], stages=t.snapshot()), *status.shards[1:]]
    text = render_nodes([msgspec.structs.replace(status, shards=shards)]).decode()
    labels = 'kind="counter",le="{}",node="n1",shard="0",stage="lock_wait"'
    assert f"clipstream_shard_stage_seconds_bucket{{{labels.format('0.00025')}}} 1.0" in text
    assert f"clipstream_shard_stage_seconds_bucket{{{labels.format('0.005')}}} 2.0" in text
    assert f"clipstream_shard_stage_seconds_bucket{{{labels.format('0.25')}}} 2.0" in text
    assert f"clipstream_shard_stage_seconds_bucket{{{labels.format('+Inf')}}} 3.0" in text
    assert 'clipstream_shard_stage_seconds_count{kind="counter",node="n1",shard="0",stage="lock_wait"} 3.0' in text
