"""The operator's view against the running system: /v1/admin/actors, `clipstream actors`, the
/admin/actors page in headless Chromium, and /metrics."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from clipstream.cli.apiclient import ApiClient, ApiError
from clipstream.stack.apt_tools import chromium_binary
from clipstream.storage.ids import new_id

pytestmark = pytest.mark.integration

CLIPSTREAM = str(Path(sys.executable).with_name("clipstream"))
KINDS = ("counter", "feed")


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of ``name`` carrying all ``labels`` (in any order)."""
    for m in re.finditer(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        have = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if all(have.get(k) == v for k, v in labels.items()):
            return float(m.group(2))
    return None


def wait_tree(base: str, token: str, node: str, timeout: float = 60.0) -> dict:
    """The admin view once our node answers with every shard running (the system may be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(base + "/v1/admin/actors", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert r.status_code == 200, r.text
        body = r.json()
        ours = [n for n in body["nodes"] if n["node"] == node]
        shards = ours[0]["guardian"]["shards"] if ours else []
        # "idle": a slot whose partitions another node's lease holds (none with one node)
        if shards and all(s["state"] in ("running", "idle") for s in shards):
            return body
        assert time.monotonic() < deadline, f"node {node} not running: {body}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
async def admin_token(system, admin_username) -> str:
    client = await ApiClient(system).signup(admin_username)
    await client.close()
    assert client.token
    return client.token


def owned(body: dict, kind: str) -> list[int]:
    """Partitions of ``kind`` held by running shards of every node that answered."""
    return sorted(p for n in body["nodes"] for s in n["guardian"]["shards"]
                  if s["kind"] == kind and s["state"] == "running" for p in s["partitions"])


async def test_admin_actors_shows_every_partition_of_each_kind(system, admin_token, node_name, settings) -> None:
    # Nodes of other sessions on the same subjects share the partitions through leases, so "every
    # partition" is over all the nodes that answered, each exactly once, once handoffs settle.
    everything = list(range(settings.actors.partitions))
    deadline = time.monotonic() + 60
    while True:
        body = wait_tree(system, admin_token, node_name)
        if all(owned(body, kind) == everything for kind in KINDS):
            break
        assert time.monotonic() < deadline, {kind: owned(body, kind) for kind in KINDS}
        time.sleep(0.5)
    node = next(n for n in body["nodes"] if n["node"] == node_name)
    guardian = node["guardian"]
    assert guardian["pid"] > 0
    for kind in KINDS:
        shards = [s for s in guardian["shards"] if s["kind"] == kind]
        assert any(s["state"] == "running" for s in shards), f"no running {kind} shard: {guardian}"
        for s in shards:
            assert s["state"] == "idle" or (s["pid"] > 0 and s["partitions"])
            for field in ("entities", "dirty", "backlog", "processed", "last_flush_age", "restarts", "hot"):
                assert field in s
    kinds = {k["kind"]: k for k in body["kinds"]}
    assert {kinds[k]["partitions_owned"] for k in KINDS} == {settings.actors.partitions}


async def test_admin_actors_needs_the_admin_role(system) -> None:
    assert httpx.get(system + "/v1/admin/actors", timeout=10).status_code == 401
    user = await ApiClient(system).signup(f"plain{new_id() % 10**8}")
    with pytest.raises(ApiError) as denied:
        await user.call("GET", "/v1/admin/actors")
    assert denied.value.status == 403
    await user.close()


async def test_cli_prints_the_tree(system, admin_token, node_name, system_env) -> None:
    wait_tree(system, admin_token, node_name)
    out = subprocess.run([CLIPSTREAM, "actors"], env=system_env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"node {node_name}" in out.stdout
    ours = out.stdout.split(f"node {node_name}", 1)[1].split("\nnode ", 1)[0]
    assert "guardian pid" in ours
    for kind in KINDS:
        assert re.search(rf"{kind}/\d+\s+running\s+pid \d+ +partitions \d+", ours), ours


async def test_admin_page_renders_the_shards_in_chromium(system, admin_token, node_name, tmp_path) -> None:
    wait_tree(system, admin_token, node_name)
    chromium = chromium_binary()
    assert chromium, "chromium missing: `clipstream stack up` installs it (Debian package chromium)"
    out = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=8000", "--dump-dom",
         # The fragment stays in the browser: the page reads it and never sends it to the server.
         f"{system}/admin/actors#token={admin_token}"],
        capture_output=True, text=True, timeout=120,
    )
    dom = out.stdout
    assert f'data-node="{node_name}"' in dom, (out.returncode, dom[-2000:], out.stderr[-2000:])
    section = dom.split(f'data-node="{node_name}"', 1)[1].split("</section>", 1)[0]
    for kind in KINDS:
        assert f'data-shard="{kind}/0"' in section, section[:3000]
    assert "state-running" in section
    # every feed shard's candidate sources, as the feed kind names them
    from clipstream.actors.entities.feed import SOURCES

    for source in SOURCES:
        assert f'data-source="feed/0/{source}"' in section, section[-3000:]


async def test_metrics_has_request_latencies_and_node_gauges(system, admin_token, node_name) -> None:
    wait_tree(system, admin_token, node_name)
    for _ in range(3):
        httpx.get(system + "/health", timeout=10)
    text = httpx.get(system + "/metrics", timeout=10).text
    assert re.search(r'clipstream_http_request_duration_seconds_bucket\{[^}]*route="/health"[^}]*status="200"', text), text[:3000]
    assert re.search(r'clipstream_http_request_duration_seconds_count\{[^}]*route="/v1/admin/actors"', text)
    for kind in KINDS:
        assert sample(text, "clipstream_shard_entities", node=node_name, kind=kind, shard="0") is not None, text
        assert sample(text, "clipstream_shard_messages_processed_total", node=node_name, kind=kind, shard="0") is not None
        assert sample(text, "clipstream_entities", kind=kind) is not None
    assert re.search(r"clipstream_shard_flush_seconds_total\{", text)
    assert re.search(r"clipstream_shard_restarts_total\{", text)
    assert re.search(r"^clipstream_nodes [1-9]", text, re.M)


async def test_the_busiest_entity_shows_as_hot(system, admin_token, node_name, settings, js) -> None:
    from clipstream.bus.codec import encode, partition_of
    from clipstream.bus.messages import ViewDelta
    from clipstream.bus.topology import Topology

    wait_tree(system, admin_token, node_name)
    video = new_id()
    subject = Topology.from_settings(settings.nats).counter_subject(partition_of(video, settings.actors.partitions))
    for _ in range(30):
        await js.publish(subject, encode(ViewDelta(video_id=video, user_id=new_id(), at=1)))
    deadline = time.monotonic() + 20
    while True:
        body = wait_tree(system, admin_token, node_name)
        hot = [h for n in body["nodes"] for s in n["guardian"]["shards"] if s["kind"] == "counter" for h in s["hot"]]
        if any(key == str(video) for key, _ in hot):
            return
        assert time.monotonic() < deadline, f"{video} never hot: {hot}"
        time.sleep(0.3)
