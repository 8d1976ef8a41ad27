"""`clipstream actors`: the supervision tree of every live node, printed in the terminal.

An operator tool on the machine: it asks the nodes over NATS directly (no API, no token), through
the same :func:`clipstream.bus.status.gather_status` as ``GET /v1/admin/actors``.
"""

from __future__ import annotations

import asyncio
import signal

import click

from clipstream.bus.status import NodeStatus, ShardStatus, per_source

__all__ = ["actors_cmd", "render_tree"]


def _ranges(partitions: tuple[int, ...]) -> str:
    """``0-3,8`` rather than 64 numbers; a round-robin split shows as its count and first few."""
    out: list[str] = []
    ps = sorted(partitions)
    i = 0
    while i < len(ps):
        j = i
        while j + 1 < len(ps) and ps[j + 1] == ps[j] + 1:
            j += 1
        out.append(str(ps[i]) if i == j else f"{ps[i]}-{ps[j]}")
        i = j + 1
    text = ",".join(out)
    return f"{len(ps)} [{text if len(text) <= 40 else text[:37] + '...'}]"


def _shard_line(s: ShardStatus) -> str:
    flush = "never" if s.last_flush_age < 0 else f"{s.last_flush_age:.1f}s ago ({s.last_flush_latency * 1000:.1f} ms)"
    line = (f"{s.kind + '/' + str(s.index):<12} {s.state:<10} pid {s.pid:<7} partitions {_ranges(s.partitions)}  "
            f"entities {s.entities}  dirty {s.dirty}  backlog {s.backlog}  processed {s.processed}  "
            f"flush {flush}  restarts {s.restarts}")
    if s.dead_letters:
        line += f"  dead letters {s.dead_letters}"
    if s.error:
        line += f"  error: {s.error}"
    return line


def _sources_line(counters: dict[str, int]) -> str:
    """A feed shard's candidate sources: impressions and like-through rate (likes per impression)
    of each, then the newest videos' impressions; empty for a shard that counts no sources."""
    sources = per_source(counters)
    if not sources:
        return ""
    parts = [f"{name} {shown:,} imp" + (f" {liked / shown:.1%} LTR" if shown else "")
             for name, (shown, liked) in sources.items()]
    line = "sources: " + " · ".join(parts)
    line += (f"  new videos {counters.get('new_video_impressions', 0):,} imp over "
             f"{counters.get('new_videos_exposed', 0):,} videos")
    if counters.get("pool_refresh_errors"):
        line += f"  pool refresh errors {counters['pool_refresh_errors']}"
    return line


def render_tree(statuses: list[NodeStatus]) -> str:
    """node → guardian → shards, one shard per line, hottest entities and a feed shard's candidate
    sources under their shard."""
    if not statuses:
        return "no node answered"
    lines: list[str] = []
    for status in statuses:
        g = status.guardian
        lines.append(f"node {status.node}")
        lines.append(f"└─ guardian pid {g.pid}  {g.address}  poison {g.poison}")
        for i, shard in enumerate(status.shards):
            last = i == len(status.shards) - 1
            lines.append(f"   {'└─' if last else '├─'} {_shard_line(shard)}")
            if shard.hot:
                hot = "  ".join(f"{key}:{n}" for key, n in shard.hot)
                lines.append(f"   {'  ' if last else '│ '}   hot: {hot}")
            sources = _sources_line(shard.counters)
            if sources:
                lines.append(f"   {'  ' if last else '│ '}   {sources}")
    return "\n".join(lines)


async def _run(watch: bool, window: float) -> int:
    from clipstream.bus.status import gather_status
    from clipstream.bus.connection import connect_nats
    from clipstream.bus.topology import Topology
    from clipstream.config import get_settings

    settings = get_settings()
    topology = Topology.from_settings(settings.nats)
    nc = await connect_nats(settings.nats, "clipstream-actors-cli", forever=False)
    # Ctrl-C ends the watch between two refreshes, and the connection closes cleanly.
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, stop.set)
    try:
        while not stop.is_set():
            statuses = await gather_status(nc, topology, window=window)
            tree = render_tree(statuses)
            if not watch:
                click.echo(tree)
                return 0 if statuses else 1
            # Home + clear: the tree redraws in place, like top.
            click.echo("\x1b[H\x1b[2J" + tree, nl=True)
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except asyncio.TimeoutError:
                pass
        return 0
    finally:
        await nc.close()


@click.command("actors")
@click.option("--watch", is_flag=True, help="refresh every second until Ctrl-C")
@click.option("--window", type=float, default=0.3, show_default=True,
              help="seconds to collect the nodes' answers")
def actors_cmd(watch: bool, window: float) -> None:
    """Print the supervision tree of every live node (node → guardian → shards)."""
    try:
        code = asyncio.run(_run(watch, window))
    except KeyboardInterrupt:
        code = 0
    except (OSError, asyncio.TimeoutError) as exc:
        raise click.ClickException(f"cannot reach NATS: {exc!r}") from exc
    if code:
        raise SystemExit(code)
