"""The operator's view without a running node: the terminal tree, the per-kind summary, the
Prometheus rendering and the admin page's Content-Security-Policy."""

from __future__ import annotations

import base64
import hashlib
import re

from clipstream.actors.messages import GuardianStatus, NodeStatus, ShardStatus
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
