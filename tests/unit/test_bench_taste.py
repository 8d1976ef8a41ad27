"""The taste scenario's pure parts: the synthetic world, its baselines and its figures."""

from __future__ import annotations

import asyncio
import random
import statistics

from clipstream.bench import taste
from clipstream.bench.loopclient import LoopClient

SMALL = taste.Shape(videos=2_000, creators=60, users=30, pages=14, tags=30)


def test_world_shape_and_tastes() -> None:
    world = taste.make_world(SMALL)
    assert len(world.author) == len(world.tags) == len(world.likes) == SMALL.videos
    assert all(1 <= len(ts) <= 3 and len(set(ts)) == len(ts) for ts in world.tags)
    assert set(world.author) <= set(range(SMALL.creators))
    before, after = taste.make_tastes(world)
    assert len(before) == SMALL.users and sum(a is not None for a in after) == len(range(0, SMALL.users, 3))
    for b, a in zip(before, after):
        assert abs(sum(b.tags.values()) - 1) < 1e-9 and len(b.tags) == 3
        if a is not None:
            assert not set(a.tags) & set(b.tags)  # a shift changes every favourite hashtag
    # Deterministic: the same seed, the same world (a run is comparable with the next).
    assert taste.make_world(SMALL).tags == world.tags


def test_topics_keep_tastes_and_niches_together_and_none_changes_nothing() -> None:
    import dataclasses

    plain = taste.make_world(SMALL)
    assert plain.topic == []
    topical = taste.make_world(dataclasses.replace(SMALL, topics=6))
    assert sorted(set(topical.topic)) == list(range(6))
    # the same hashtags and popularity, drawn into topics: niches and tastes keep to one far more
    # often than the 1 in 6 of independent draws (the plain world's rate, measured by its topics)
    same = lambda w, pairs: statistics.fmean(topical.topic[a] == topical.topic[b] for a, b in pairs)  # noqa: E731
    assert same(topical, topical.niche) > 0.6 > 0.3 > same(plain, plain.niche)
    before, after = taste.make_tastes(topical)
    firsts = [list(t.tags) for t in before]
    assert same(topical, [(t[0], x) for t in firsts for x in t[1:]]) > 0.5
    assert all(a is None or not set(a.tags) & set(b.tags) for b, a in zip(before, after))


def test_p_like_follows_the_hidden_taste() -> None:
    world = taste.make_world(SMALL)
    before, _ = taste.make_tastes(world)
    t = before[0]
    fitting = [j for j in range(SMALL.videos) if set(world.tags[j]) & set(t.tags)]
    other = [j for j in range(SMALL.videos) if not set(world.tags[j]) & set(t.tags) and world.author[j] not in t.creators]
    assert fitting and other
    assert all(taste.p_like(world, t, j) == 0.01 for j in other)
    assert statistics.fmean(taste.p_like(world, t, j) for j in fitting) > 0.2
    assert max(taste.p_like(world, t, j) for j in range(SMALL.videos)) < 0.85


def test_baselines_order_and_oracle_follows_the_shift() -> None:
    world = taste.make_world(SMALL)
    before, after = taste.make_tastes(world)
    base = taste.baselines(world, before, after, SMALL.pages)
    mean = {k: statistics.fmean(x for row in v for x in row) for k, v in base.items()}
    assert mean["oracle"] > mean["most_liked"] > mean["random"]
    # The oracle's first page after a shift is as good as a first page: it knows the new taste.
    shifted = [u for u, a in enumerate(after) if a is not None]
    drop = [base["oracle"][u][taste.SHIFT_PAGE] - base["oracle"][u][taste.SHIFT_PAGE - 1] for u in shifted]
    assert statistics.fmean(drop) > 0


def test_recovery_pages() -> None:
    assert taste.recovery_pages(0.2, [0.05, 0.1, 0.17]) == 3
    assert taste.recovery_pages(0.2, [0.161]) == 1
    assert taste.recovery_pages(0.2, [0.05, 0.1]) is None


def test_report_of_an_oracle_like_system() -> None:
    """A system serving what the oracle serves scores its share of the oracle as 1."""
    world = taste.make_world(SMALL)
    before, after = taste.make_tastes(world)
    rng = random.Random(4)
    served = []
    for u in range(SMALL.users):
        s, seen = taste.Served(), set()
        for p in range(SMALL.pages):
            t = after[u] if after[u] is not None and p >= taste.SHIFT_PAGE else before[u]
            ranked = sorted((j for j in range(SMALL.videos) if j not in seen),
                            key=lambda j: taste.p_like(world, t, j), reverse=True)[:10]
            seen.update(ranked)
            s.add(world, t, ranked)
            s.likes.append(sum(rng.random() < taste.p_like(world, t, j) for j in ranked))
        served.append(s)
    base = taste.baselines(world, before, after, SMALL.pages)
    figures = taste.report(world, before, after, served, base, SMALL.pages)
    assert abs(figures["pages_6_20"]["share_of_oracle"] - 1.0) < 1e-3
    assert figures["pages_6_20"]["lift_over_most_liked"] > 2
    assert figures["shift"]["recovery_pages"] == 1
    assert 0 < figures["coverage"]["share"] <= 1


def test_loop_client_keeps_alive_and_reads_bodies() -> None:
    async def main() -> None:
        connections = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                length = int(next(ln.split(b":")[1] for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length")))
                body = await reader.readexactly(length)
                if head.startswith(b"GET /chunked"):
                    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n")
                else:
                    out = b'{"echo": ' + (body or b"null") + b"}"
                    writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: %d\r\n\r\n%s" % (len(out), out))
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = LoopClient(f"http://127.0.0.1:{port}", connections=2)
        answers = await asyncio.gather(*(client.request("POST", "/x", json={"n": i}) for i in range(20)))
        assert [a.status for a in answers] == [201] * 20
        assert sorted(a.json()["echo"]["n"] for a in answers) == list(range(20))
        assert (await client.request("GET", "/chunked", params={"q": 1})).json() == {"a": 1}
        assert connections == 2  # kept alive: no new socket per request
        await client.close()
        server.close()

    asyncio.run(main())


def test_replay_reports_how_the_profile_learns_and_the_true_profile_bounds_it() -> None:
    from clipstream.bench import taste_replay

    learned = taste_replay.replay(SMALL, SMALL.users)
    bound = taste_replay.replay(SMALL, SMALL.users, true_profile=2)
    for rep in (learned, bound):
        shown = rep["learning"]["true_hashtags_shown_by_the_shift"]
        assert abs(sum(shown.values()) - 1) < 0.01
        assert len(rep["learning"]["true_hashtags_in_top3_by_page"]) == SMALL.pages
    # a profile that is the user's two strongest hashtags holds exactly two true ones in its top 3
    assert bound["learning"]["true_hashtags_in_top3_by_page"] == [2.0] * SMALL.pages
    # a new profile knows nothing on page 1, and learns some by the shift
    recall = learned["learning"]["true_hashtags_in_top3_by_page"]
    assert recall[0] == 0.0 < recall[taste.SHIFT_PAGE - 1] < 3.0
    # knowing the hashtags makes the feed more relevant than learning them does
    assert bound["pages_6_20"]["system"] > learned["pages_6_20"]["system"]
