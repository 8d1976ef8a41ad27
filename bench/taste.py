"""The taste scenario: is the For You feed relevant, and how fast does it learn? (BENCHMARKS.md)

A synthetic world with a ground truth the system never sees:

* a catalogue of captioned videos (:class:`Shape`: 20,000 from 500 creators, 80 hashtags whose
  popularity is Zipf-like); each creator has a niche of two hashtags and most of their videos
  carry one of them, each video has an appeal (its quality, the same for everyone) and a seeded
  like count that follows the appeal (what "most liked" sees);
* users with hidden tastes: three favourite hashtags with weights, and three favourite creators
  among those of their niche. A served video is liked with :func:`p_like` of that taste, watched
  to the end or skipped by :func:`watch_of`; a third of the users change their favourite
  hashtags and creators midway (:data:`SHIFT_PAGE`).

The users drive the real running system over HTTP as a viewer swipes: a page, then for each video
a dwell of its watch time (played :data:`TIME_SCALE` times faster), a like if one is drawn and the
view with its watch time when the card is left; the next page when the last card is left. (At
that pace 300 users offer ~350 requests/s, about half of what the system answered on this
machine with this Python client beside it: the users burst all of a page's calls at once in the
first version, saturated it, and measured queueing.) Creators
upload new captioned videos through the real upload path during the run (cold start). A second
group of probe users measures real time: a like, then a page 250 ms after its 200, and whether
the page's ``feedback_at`` says the like was taken in.

In the same run and over the same catalogue and users, three baselines are computed offline, each
with its own served set per user: random unserved, most-liked unserved and the oracle (the best
unserved by the user's current hidden taste). Relevance is compared by the *expected* like rate
(the mean :func:`p_like` of what was served, under the taste of that moment), which is what the
draws estimate with less noise; the realised like-through rate is reported beside it.
"""

from __future__ import annotations

import asyncio
import math
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Container, Sequence

from clipstream.bench import openloop
from clipstream.bench.seed import CQL_CONCURRENCY, Progress

__all__ = ["Shape", "Taste", "World", "Served", "baselines", "make_tastes", "make_world", "p_like",
           "react", "recovery_pages", "report", "run_taste", "shifted", "watch_of"]

#: page (0-based) from which the shifting users have their new taste
SHIFT_PAGE = 10
#: every SHIFT_EVERY-th user shifts
SHIFT_EVERY = 3
#: the bench plays watch time this many times faster than real time
TIME_SCALE = 2.0
PAGE_SIZE = 10
#: the probe: a page this long after a like's 200
PROBE_DELAY_S = 0.25
DURATION_MS = 5_000


@dataclass(frozen=True, slots=True)
class Shape:
    videos: int = 20_000
    creators: int = 500
    users: int = 300
    pages: int = 20
    tags: int = 80
    #: videos uploaded through the API during the run, by creators new to the system
    uploads: int = 8
    #: probe users of the real-time check; each likes and asks a page every ~probe_every_s seconds
    #: until the users are done (~400 s: ~40 probes each)
    probe_users: int = 40
    probe_every_s: float = 10.0
    #: hashtags fall into this many topics (0: none, every draw independent); a user's favourite
    #: hashtags and a creator's niche then keep to one topic with :attr:`topic_affinity`
    topics: int = 0
    topic_affinity: float = 0.7


@dataclass(slots=True)
class World:
    """The catalogue as indices: video ``j`` has ``author[j]`` (a creator index), ``tags[j]``
    (hashtag indices), ``appeal[j]`` in (0, 1) and ``likes[j]`` seeded likes."""

    shape: Shape
    tag_names: list[str]
    niche: list[tuple[int, int]]
    author: list[int]
    tags: list[tuple[int, ...]]
    appeal: list[float]
    likes: list[int]
    tag_pop: list[float]
    #: hashtag index -> its topic (empty: a world without topics)
    topic: list[int] = field(default_factory=list)

    def draw_tag(self, rng: random.Random, near: int | None = None, avoid: Container[int] = ()) -> int:
        """A hashtag by popularity; with ``near`` (a hashtag) and topics, from its topic with
        :attr:`Shape.topic_affinity`."""
        tags: Sequence[int] = range(self.shape.tags)
        if near is not None and self.topic and rng.random() < self.shape.topic_affinity:
            tags = [t for t in tags if self.topic[t] == self.topic[near] and t not in avoid] or tags
        pop = [self.tag_pop[t] for t in tags]
        while True:
            t = rng.choices(tags, pop)[0]
            if t not in avoid:
                return t

    def by_tag(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for j, ts in enumerate(self.tags):
            for t in ts:
                out.setdefault(t, []).append(j)
        return out


@dataclass(frozen=True, slots=True)
class Taste:
    """A user's hidden taste: hashtag index -> weight (summing to 1), and favourite creators."""

    tags: dict[int, float]
    creators: frozenset[int]


def make_world(shape: Shape, seed: int = 1) -> World:
    rng = random.Random(seed)
    names = [f"t{i:02d}{w}" for i, w in enumerate(_WORDS[: shape.tags])]
    pop = [1.0 / (i + 1) ** 0.8 for i in range(shape.tags)]
    # Topics by a seeded shuffle, so each has popular and rare hashtags (its own generator: a
    # world without topics draws exactly what it drew before they existed).
    order = list(range(shape.tags))
    random.Random(seed + 100).shuffle(order)
    topic = [0] * shape.tags if shape.topics else []
    for rank, t in enumerate(order if shape.topics else ()):
        topic[t] = rank % shape.topics
    draw = World(shape, names, [], [], [], [], [], pop, topic).draw_tag
    niche = []
    for _ in range(shape.creators):
        a = rng.choices(range(shape.tags), pop)[0]
        b = draw(rng, near=a if topic else None, avoid=(a,))
        niche.append((a, b))
    author, tags, appeal, likes = [], [], [], []
    creator_quality = [rng.betavariate(2, 2) for _ in range(shape.creators)]
    for _ in range(shape.videos):
        c = rng.randrange(shape.creators)
        chosen: list[int] = []
        for _ in range(rng.choice((1, 2, 2, 3))):
            t = rng.choice(niche[c]) if rng.random() < 0.75 else rng.choices(range(shape.tags), pop)[0]
            if t not in chosen:
                chosen.append(t)
        q = min(0.99, max(0.01, 0.5 * creator_quality[c] + 0.5 * rng.betavariate(2, 3)))
        author.append(c)
        tags.append(tuple(chosen))
        appeal.append(q)
        # Seeded likes follow the appeal and the hashtags' popularity (a big audience likes more).
        reach = sum(pop[t] for t in chosen) / len(chosen)
        likes.append(int(1000 * q**3 * reach * rng.uniform(0.5, 1.5)))
    return World(shape, names, niche, author, tags, appeal, likes, pop, topic)


def _taste(world: World, rng: random.Random, avoid: set[int] = frozenset()) -> Taste:  # type: ignore[assignment]
    n = world.shape.tags
    picked: list[int] = []
    while len(picked) < 3:
        if world.topic and picked:  # the first favourite sets the user's topic
            t = world.draw_tag(rng, near=picked[0], avoid=set(avoid) | set(picked))
        else:
            t = rng.choices(range(n), world.tag_pop)[0]
        if t not in picked and t not in avoid:
            picked.append(t)
    raw = sorted((rng.random() + 0.5 for _ in picked), reverse=True)
    total = sum(raw)
    tags = {t: w / total for t, w in zip(picked, raw)}
    near = [c for c, (a, b) in enumerate(world.niche) if a in tags or b in tags]
    creators = frozenset(rng.sample(near, min(3, len(near))))
    return Taste(tags, creators)


def make_tastes(world: World, seed: int = 2) -> tuple[list[Taste], list[Taste | None]]:
    """Each user's taste before the shift, and after it (None: the user does not shift)."""
    rng = random.Random(seed)
    before = [_taste(world, rng) for _ in range(world.shape.users)]
    after = [shifted(world, rng, t) if i % SHIFT_EVERY == 0 else None for i, t in enumerate(before)]
    return before, after


def shifted(world: World, rng: random.Random, taste: Taste) -> Taste:
    """A new taste with none of the old favourite hashtags."""
    return _taste(world, rng, avoid=set(taste.tags))


def match(world: World, taste: Taste, j: int) -> float:
    """How well video ``j`` fits the taste, in [0, 1]."""
    m = 1.5 * sum(taste.tags.get(t, 0.0) for t in world.tags[j])
    if world.author[j] in taste.creators:
        m += 0.4
    return min(1.0, m)


def p_like(world: World, taste: Taste, j: int) -> float:
    """The chance that a user of this taste likes video ``j``: 1 % for a video outside the taste,
    up to ~0.84 for a fitting one of high appeal."""
    return 0.01 + 0.6 * match(world, taste, j) * (0.4 + world.appeal[j])


def watch_of(rng: random.Random, p: float, liked: bool) -> int:
    """Watch time, ms: a liked video is watched to the end; others fully with a chance that grows
    with the fit, else mostly skipped within the first second."""
    if liked or rng.random() < 0.1 + 1.2 * p:
        return DURATION_MS
    return rng.choice((600, 800, 2_500))


@dataclass(slots=True)
class Served:
    """What one user was served, page by page (catalogue indices; -1: a video not in it)."""

    pages: list[list[int]] = field(default_factory=list)
    expected: list[float] = field(default_factory=list)  # mean p_like of each page
    likes: list[int] = field(default_factory=list)
    authors: list[float] = field(default_factory=list)  # distinct authors / page size
    tag_share: list[float] = field(default_factory=list)  # share of the page's commonest hashtag
    fit: list[float] = field(default_factory=list)  # share of the page that fits the taste at all

    def add(self, world: World, taste: Taste, page: Sequence[int]) -> None:
        """Record a served page (its likes come later, in :attr:`likes`)."""
        known = [j for j in page if j >= 0]
        n = max(1, len(known))
        tags = Counter(t for j in known for t in world.tags[j])
        self.pages.append(list(page))
        self.expected.append(sum(p_like(world, taste, j) for j in known) / n)
        self.authors.append(len({world.author[j] for j in known}) / n)
        self.tag_share.append(tags.most_common(1)[0][1] / n if tags else 0.0)
        self.fit.append(sum(1 for j in known if match(world, taste, j) > 0) / max(1, len(page)))


def react(rng: random.Random, world: World, taste: Taste, j: int) -> tuple[bool, int]:
    """A viewer's reaction to video ``j`` (-1: not in the catalogue): (liked, watched ms)."""
    p = p_like(world, taste, j) if j >= 0 else 0.05
    like = rng.random() < p
    return like, watch_of(rng, p, like)




def baselines(world: World, tastes: Sequence[Taste], after: Sequence[Taste | None], pages: int,
              size: int = PAGE_SIZE, seed: int = 3) -> dict[str, list[list[float]]]:
    """Per baseline, per user, the expected like rate of each page it would have served."""
    rng = random.Random(seed)
    n = len(world.author)
    most_liked = sorted(range(n), key=lambda j: world.likes[j], reverse=True)
    out: dict[str, list[list[float]]] = {"random": [], "most_liked": [], "oracle": []}
    for u, before in enumerate(tastes):
        served_r: set[int] = set()
        ml_next = 0
        served_o: set[int] = set()
        ranked_for: Taste | None = None
        ranked: list[int] = []
        rows = {k: [] for k in out}  # type: dict[str, list[float]]
        for p in range(pages):
            taste = after[u] if after[u] is not None and p >= SHIFT_PAGE else before
            page_r: list[int] = []
            while len(page_r) < size:
                j = rng.randrange(n)
                if j not in served_r:
                    served_r.add(j)
                    page_r.append(j)
            page_m = most_liked[ml_next : ml_next + size]
            ml_next += size
            if taste is not ranked_for:  # the oracle's order under this taste, its own served left out
                ranked_for = taste
                ranked = sorted((j for j in range(n) if j not in served_o), key=lambda j: p_like(world, taste, j),
                                reverse=True)
            page_o, ranked = ranked[:size], ranked[size:]
            served_o.update(page_o)
            for name, page in (("random", page_r), ("most_liked", page_m), ("oracle", page_o)):
                rows[name].append(sum(p_like(world, taste, j) for j in page) / size)
        for name in out:
            out[name].append(rows[name])
    return out


def _mean_by_page(rows: Sequence[Sequence[float]], pages: int) -> list[float]:
    return [statistics.fmean([r[p] for r in rows if p < len(r)] or [0.0]) for p in range(pages)]


def recovery_pages(pre: float, post_by_page: Sequence[float], share: float = 0.8) -> int | None:
    """Pages after the shift until the rate is back to ``share`` of ``pre`` (1: the first page
    after the shift already is); None if it never is."""
    for k, rate in enumerate(post_by_page, start=1):
        if rate >= share * pre:
            return k
    return None


def report(world: World, tastes: Sequence[Taste], after: Sequence[Taste | None], served: Sequence[Served],
           base: dict[str, list[list[float]]], pages: int) -> dict[str, Any]:
    """The figures of BENCHMARKS.md's relevance table, from what was served and the baselines."""
    system = _mean_by_page([s.expected for s in served], pages)
    realised = [
        sum(s.likes[p] for s in served if p < len(s.likes))
        / max(1, sum(sum(1 for j in s.pages[p] if j >= 0) for s in served if p < len(s.pages)))
        for p in range(pages)
    ]
    by_page = {name: _mean_by_page(rows, pages) for name, rows in base.items()}
    late = slice(5, pages)  # pages 6-20

    def late_mean(values: Sequence[float]) -> float:
        return statistics.fmean(values[late]) if values[late] else 0.0

    sys_late = late_mean(system)
    shifters = [u for u, a in enumerate(after) if a is not None]
    pre = statistics.fmean([statistics.fmean(served[u].expected[SHIFT_PAGE - 5 : SHIFT_PAGE]) for u in shifters
                            if len(served[u].expected) >= SHIFT_PAGE]) if shifters else 0.0
    post = _mean_by_page([served[u].expected[SHIFT_PAGE:] for u in shifters], pages - SHIFT_PAGE)
    oracle_post = _mean_by_page([base["oracle"][u][SHIFT_PAGE:] for u in shifters], pages - SHIFT_PAGE)
    seen = {j for s in served for page in s.pages for j in page if j >= 0}
    r4 = lambda x: round(x, 4)  # noqa: E731
    return {
        "expected_like_rate_by_page": {"system": [r4(x) for x in system],
                                       **{k: [r4(x) for x in v] for k, v in by_page.items()}},
        "realised_like_through_by_page": [r4(x) for x in realised],
        "fitting_share_by_page": [r4(x) for x in _mean_by_page([s.fit for s in served], pages)],
        "pages_6_20": {
            "system": r4(sys_late), **{k: r4(late_mean(v)) for k, v in by_page.items()},
            "lift_over_most_liked": round(sys_late / late_mean(by_page["most_liked"]), 2)
            if late_mean(by_page["most_liked"]) else None,
            "share_of_oracle": round(sys_late / late_mean(by_page["oracle"]), 3) if late_mean(by_page["oracle"]) else None,
        },
        "shift": {
            "users": len(shifters), "pre_shift_rate_pages_6_10": r4(pre),
            "post_shift_by_page": [r4(x) for x in post], "oracle_post_shift_by_page": [r4(x) for x in oracle_post],
            "recovery_pages": recovery_pages(pre, post),
        },
        "coverage": {"served_distinct": len(seen), "catalogue": len(world.author),
                     "share": round(len(seen) / len(world.author), 3)},
        "diversity": {
            "distinct_authors_per_page": r4(statistics.fmean([a for s in served for a in s.authors] or [0.0])),
            "top_hashtag_share_per_page": r4(statistics.fmean([t for s in served for t in s.tag_share] or [0.0])),
        },
    }


def _quantiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p99/max in ms (client-side, with the client's own queueing for a connection)."""
    xs = sorted(samples)
    at = lambda q: round(1000 * xs[min(len(xs) - 1, int(q * len(xs)))], 1)  # noqa: E731
    return {"n": len(xs), "p50": at(0.5), "p99": at(0.99), "max": at(1.0)} if xs else {"n": 0}


# --- driving the running system ------------------------------------------------------------------

_WORDS = (
    "food travel dance music comedy pets cats dogs fitness yoga fashion beauty makeup diy art design "
    "gaming tech science space history books film anime football basketball tennis running cycling "
    "skate surf ski hiking camping garden plants cooking baking coffee tea vegan bbq streetfood asmr "
    "magic pranks family kids parenting wedding cars motors bikes trains planes boats fishing lego "
    "chess math coding startups finance crypto housing interior cleaning lifehacks nails hair tattoo "
    "photo drawing painting poetry singing guitar piano drums rap kpop opera theatre"
).split()


@dataclass(slots=True)
class Catalogue:
    """The world as written to the system: ids of creators, users and videos."""

    creator_ids: list[int]
    user_ids: list[int]
    video_ids: list[int]
    index_of: dict[int, int]


async def seed_taste(cql: Any, redis: Any, world: World, progress: Progress) -> Catalogue:
    """The catalogue in CQL (users, videos with captions, hashtag rows, counts) and a Redis holding
    only it (cards, counts, candidate lists, hashtags). New ids every run: freshness is real time."""
    from clipstream.bench.seed import publish_cards
    from clipstream.storage.cache import Cache
    from clipstream.storage.ids import EPOCH_MS, new_id
    from clipstream.storage.models import Stats, VideoCard
    from clipstream.storage.repos import StatsRepo
    from clipstream.workers.seed import SHARED_MEDIA_KEY, SHARED_THUMB_KEY

    shape, now = world.shape, int(time.time() * 1000)
    run = lambda stmt, rows: cql.execute_many(stmt, rows, concurrency=CQL_CONCURRENCY)  # noqa: E731
    creators = [new_id() for _ in range(shape.creators)]
    users = [new_id() for _ in range(shape.users + shape.probe_users)]
    tag = f"{now % 10**8}"
    name = {u: f"tc{tag}_{i}" for i, u in enumerate(creators)} | {u: f"tu{tag}_{i}" for i, u in enumerate(users)}
    progress(f"taste: seeding {len(name):,} users, {shape.videos:,} captioned videos")
    await run("INSERT INTO users (user_id, username, email, password_hash, is_admin, created_at) "
              "VALUES (?, ?, ?, ?, false, ?)", [(u, n, f"{n}@bench.invalid", "!", now) for u, n in name.items()])
    await run("INSERT INTO users_by_username (username, user_id) VALUES (?, ?)", [(n, u) for u, n in name.items()])
    # Two days of uploads, newest first: video j is j * spacing old; its id carries that time.
    spacing = 2 * 86_400_000 // shape.videos
    vids = [((now - 60_000 - j * spacing - EPOCH_MS) << 22) | (j & 0x3FFFFF) for j in range(shape.videos)]
    captions = [f"clip {j} " + " ".join("#" + world.tag_names[t] for t in world.tags[j]) for j in range(shape.videos)]
    hashtags = [[world.tag_names[t] for t in world.tags[j]] for j in range(shape.videos)]
    created = [now - 60_000 - j * spacing for j in range(shape.videos)]
    rows = [(v, creators[world.author[j]], f"bench/{v}.mp4", SHARED_MEDIA_KEY, SHARED_THUMB_KEY, created[j],
             created[j], captions[j], hashtags[j]) for j, v in enumerate(vids)]
    await run("INSERT INTO videos (video_id, author_id, status, file_size, file_format, upload_key, media_key, "
              "thumb_key, duration, width, height, created_at, ready_at, deleted, caption, hashtags) "
              "VALUES (?, ?, 'ready', 1, 'mp4', ?, ?, ?, 5.0, 720, 1280, ?, ?, false, ?, ?)", rows)
    await run("INSERT INTO videos_by_author (author_id, video_id) VALUES (?, ?)",
              [(creators[world.author[j]], v) for j, v in enumerate(vids)])
    await run("INSERT INTO videos_by_hashtag (tag, video_id, author_id) VALUES (?, ?, ?)",
              [(t, v, creators[world.author[j]]) for j, v in enumerate(vids) for t in hashtags[j]])
    await StatsRepo(cql).put_many([Stats(v, world.likes[j]) for j, v in enumerate(vids)])
    progress("taste: Redis holds only the catalogue")
    await redis.flushdb()
    cards = [VideoCard(v, creators[world.author[j]], name[creators[world.author[j]]], SHARED_MEDIA_KEY,
                       SHARED_THUMB_KEY, DURATION_MS / 1000, created[j], captions[j], tuple(hashtags[j]))
             for j, v in enumerate(vids)]
    await publish_cards(redis, Cache(redis), cards, dict(zip(vids, world.likes)), candidates=True)
    return Catalogue(creators, users, vids, {v: j for j, v in enumerate(vids)})


class _Client:
    """Bearer-token HTTP calls of many users over one connection pool, counting failures."""

    def __init__(self, url: str, connections: int = 64) -> None:
        from clipstream.bench.loopclient import LoopClient

        self.http = LoopClient(url, connections)
        self.errors: Counter[str] = Counter()
        self.requests = 0
        #: latency samples (s) per kind of call: feed, like, view
        self.latency: dict[str, list[float]] = {}

    async def call(self, method: str, path: str, token: str, kind: str | None = None, **kw: Any) -> Any:
        """One call; its latency is kept under ``kind`` (by default "feed", or the path's last part)."""
        self.requests += 1
        kind = kind or ("feed" if path == "/v1/feed" else path.rsplit("/", 1)[1])
        t0 = time.perf_counter()
        r = await self.http.request(method, path, {"Authorization": f"Bearer {token}"}, **kw)
        self.latency.setdefault(kind, []).append(time.perf_counter() - t0)
        if r.status >= 300:
            self.errors[f"{method} {kind} {r.status}"] += 1
            return None
        return r.json() or {}

    async def close(self) -> None:
        await self.http.close()


async def _drive_user(client: _Client, token: str, u: int, world: World, cat: Catalogue, before: Taste,
                      after: Taste | None, pages: int, rng: random.Random, served: Served,
                      impressions: dict[int, list[float]]) -> None:
    cursor: str | None = None
    for p in range(pages):
        taste = after if after is not None and p >= SHIFT_PAGE else before
        params: dict[str, Any] = {"limit": PAGE_SIZE}
        if cursor:
            params["cursor"] = cursor
        # A user's first page activates the feed entity (reads from Cassandra) while every other
        # user starts too: its latency is kept apart from the pages of a running session.
        body = await client.call("GET", "/v1/feed", token, kind="feed_first" if p == 0 else "feed", params=params)
        if body is None:
            continue
        _count_new(body, impressions)
        page = [cat.index_of.get(int(item["video_id"]), -1) for item in body["videos"]]
        served.add(world, taste, page)
        liked = 0
        for item, j in zip(body["videos"], page):
            like, watched = react(rng, world, taste, j)
            await asyncio.sleep(watched / 1000 / TIME_SCALE)
            if like:
                liked += 1
                await client.call("POST", f"/v1/videos/{item['video_id']}/like", token, json={"action": "like"})
            await client.call("POST", f"/v1/videos/{item['video_id']}/view", token, json={"watched_ms": watched})
        served.likes.append(liked)
        cursor = body.get("next_cursor")


def _count_new(body: dict[str, Any] | None, impressions: dict[int, list[float]]) -> None:
    """Impressions of the run's uploads on a page, whoever asked it: the probe users are viewers
    too (they had the first pages after an upload and were not counted: the run's first upload
    showed 1 impression where the shards had served it 20 times, 2026-12-04)."""
    if body:
        now = time.monotonic()
        for item in body.get("videos", ()):
            vid = int(item["video_id"])
            if vid in impressions:
                impressions[vid].append(now)


@dataclass(slots=True)
class ProbeResult:
    """One real-time probe: when its like was sent (s after the run's start), the like's latency,
    whether the page 250 ms after its 200 reflected it, and when the like was seen at all (ms after
    the 200, by asking the same page again; None: not within :data:`PROBE_FOLLOW_S`)."""

    at_s: float
    like_s: float
    reflected: bool
    seen_after_ms: float | None
    #: the page asked with the like's ``read_after`` (read your own writes), or without
    with_token: bool = False
    #: that page's latency (s)
    page_s: float = 0.0


#: after a miss, the probe asks the same page again every PROBE_POLL_S for this long
PROBE_FOLLOW_S = 5.0
PROBE_POLL_S = 0.05


async def _probe(client: _Client, token: str, rng: random.Random, impressions: dict[int, list[float]],
                 started: float, every_s: float, stop: asyncio.Event) -> list[ProbeResult]:
    """Until ``stop`` (the users are done), every ``every_s`` on average: like a video of the last
    page, wait :data:`PROBE_DELAY_S` after the 200, ask the next page: does its ``feedback_at``
    reach the like? On a miss, the same page again (the same cursor answers the same page, with
    the entity's current ``feedback_at``) until it does. (The probe user sends nothing else
    meanwhile.) Probes are spread over the run so they measure its whole load, not its start.
    Every other probe asks its page with the like's ``read_after`` as ``after``, as the watch page
    does: the system's own speed and the guarantee a client can ask for, side by side."""
    out: list[ProbeResult] = []
    with_token = rng.random() < 0.5
    if await _pause(stop, rng.uniform(0, every_s)):
        return out
    body = await client.call("GET", "/v1/feed", token, params={"limit": PAGE_SIZE})
    _count_new(body, impressions)
    while not stop.is_set():
        if not body or not body["videos"]:
            break
        cursor = body.get("next_cursor")
        vid = rng.choice(body["videos"])["video_id"]
        sent_ms = int(time.time() * 1000)  # the API stamps the like at or after this (same clock)
        t0 = time.monotonic()
        liked = await client.call("POST", f"/v1/videos/{vid}/like", token, json={"action": "like"})
        if liked is None:
            continue
        answered = time.monotonic()
        with_token = not with_token
        await asyncio.sleep(PROBE_DELAY_S)
        params = {"limit": PAGE_SIZE, "cursor": cursor}
        if with_token and liked.get("read_after"):
            params["after"] = liked["read_after"]
        asked = time.monotonic()
        body = await client.call("GET", "/v1/feed", token, kind="probe_page", params=params)
        page_s = time.monotonic() - asked
        _count_new(body, impressions)
        if body is None:
            continue
        ok = body.get("feedback_at", 0) >= sent_ms
        seen: float | None = PROBE_DELAY_S * 1000 if ok else None
        while seen is None and time.monotonic() - answered < PROBE_FOLLOW_S:
            await asyncio.sleep(PROBE_POLL_S)
            again = await client.call("GET", "/v1/feed", token, kind="probe_again", params=params)
            if again is not None and again.get("feedback_at", 0) >= sent_ms:
                seen = round((time.monotonic() - answered) * 1000, 1)
        out.append(ProbeResult(round(t0 - started, 1), answered - t0, ok, seen, "after" in params, page_s))
        await _pause(stop, rng.uniform(0.5, 1.5) * every_s)
    return out


async def _pause(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile; True if it is."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass
    return stop.is_set()


def _real_time(probes: Sequence[ProbeResult]) -> dict[str, Any]:
    """The share of probe pages that reflected their like, and what the misses were."""
    reflected = [r.reflected for r in probes]
    missed = [r for r in probes if not r.reflected]
    seen = sorted(r.seen_after_ms for r in missed if r.seen_after_ms is not None)
    return {
        "probes": len(reflected), "reflected_250ms_after": sum(reflected),
        "share": round(sum(reflected) / len(reflected), 4) if reflected else None,
        "like_p50_ms": round(1000 * statistics.median([r.like_s for r in probes]), 1) if probes else None,
        "page_ms": _quantiles([r.page_s for r in probes]),
        "first_probe_s": min((r.at_s for r in probes), default=None),
        "last_probe_s": max((r.at_s for r in probes), default=None),
        # each miss: seconds into the run, the like's latency (ms), ms after its 200 the like was
        # seen (None: not within PROBE_FOLLOW_S)
        "misses": [(r.at_s, round(1000 * r.like_s, 1), r.seen_after_ms) for r in missed],
        "missed_seen_after_ms": _quantiles([x / 1000 for x in seen]) if seen else None,
        "target_met": bool(reflected) and sum(reflected) / len(reflected) >= 0.99,
    }


async def _online(client: _Client, token: str) -> dict[str, Any]:
    """What the system counted itself, per candidate source (``/metrics``, summed over nodes)."""
    r = await client.http.request("GET", "/metrics")
    out: dict[str, dict[str, float]] = {}
    for line in r.body.decode().splitlines():
        for family, key in (("clipstream_feed_impressions_total{", "impressions"),
                            ("clipstream_feed_source_likes_total{", "likes")):
            if line.startswith(family) and 'source="' in line:
                source = line.split('source="', 1)[1].split('"', 1)[0]
                row = out.setdefault(source, {"impressions": 0.0, "likes": 0.0})
                row[key] += float(line.rsplit(" ", 1)[1])
    for row in out.values():
        row["like_through"] = round(row["likes"] / row["impressions"], 4) if row["impressions"] else 0.0
    return out


async def _upload_new(url: str, world: World, count: int, progress: Progress,
                      impressions: dict[int, list[float]], ready_at: dict[int, float]) -> None:
    """New creators upload captioned clips through the real path; each one's ready time is kept."""
    import tempfile

    from clipstream.cli.apiclient import ApiClient
    from clipstream.media.testsrc import make_test_video

    rng = random.Random(11)
    with tempfile.TemporaryDirectory(prefix="cs-taste-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        await make_test_video(clip, seconds=3.0, width=360, height=640)
        for i in range(count):
            client = await ApiClient(url).signup(f"tastenew{int(time.time()) % 10**7}x{i}")
            try:
                tags = rng.sample(range(world.shape.tags), 2)
                caption = "new " + " ".join("#" + world.tag_names[t] for t in tags)
                vid = await client.upload(clip, caption=caption)
                impressions[int(vid)] = []
                video = await client.wait_processed(vid, timeout=120)
                if video["status"] == "ready":
                    ready_at[int(vid)] = time.monotonic()
                else:
                    progress(f"taste: upload {vid} ended {video['status']}: {video.get('failure_reason')}")
            finally:
                await client.close()
            await asyncio.sleep(1.0)


async def run_taste(url: str, world: World, cat: Catalogue, tokens: Sequence[str], progress: Progress,
                    seed: int = 5) -> dict[str, Any]:
    """Drive the system with the world's users, uploads and probes; return every figure."""
    shape = world.shape
    before, after = make_tastes(world)
    rng = random.Random(seed)
    served = [Served() for _ in range(shape.users)]
    impressions: dict[int, list[float]] = {}
    ready_at: dict[int, float] = {}
    client = _Client(url)
    stages_before = await openloop.scrape_stages(url)
    sched_before = await asyncio.to_thread(openloop.sched_snapshot)
    started = time.monotonic()
    try:
        users = [
            _drive_user(client, tokens[u], u, world, cat, before[u], after[u], shape.pages,
                        random.Random(rng.random()), served[u], impressions)
            for u in range(shape.users)
        ]
        users_done = asyncio.Event()

        async def all_users() -> None:
            try:
                await asyncio.gather(*users)
            finally:
                users_done.set()

        probes = [_probe(client, tokens[shape.users + i], random.Random(rng.random()), impressions, started,
                         shape.probe_every_s, users_done)
                  for i in range(shape.probe_users)]
        uploads = _upload_new(url, world, shape.uploads, progress, impressions, ready_at)
        results = await asyncio.gather(all_users(), asyncio.gather(*probes), uploads)
        elapsed = time.monotonic() - started
        # Where the time went while the users ran (BENCHMARKS.md, issue 15's stages): CPU and
        # run-queue wait by process role, and the shards' and API's stage histograms (read 2.5 s
        # later, when the shards' last stats have reached /metrics).
        sched = openloop.sched_figures(sched_before, await asyncio.to_thread(openloop.sched_snapshot), elapsed)
        await asyncio.sleep(2.5)
        stages = openloop.stage_figures(stages_before, await openloop.scrape_stages(url))
        # The users may be done before a late upload had its 10 views: a few more pages by some users.
        extra_pages = 0
        while any(len([t for t in impressions[v] if t >= r]) < 10 for v, r in ready_at.items()) \
                and time.monotonic() - min(ready_at.values(), default=time.monotonic()) < 300:
            body = await client.call("GET", "/v1/feed", tokens[rng.randrange(shape.users)], params={"limit": PAGE_SIZE})
            extra_pages += 1
            _count_new(body, impressions)
        online = await _online(client, tokens[0])
    finally:
        await client.close()
    probe_results = [x for r in results[1] for x in r]
    progress(f"taste: {shape.users} users x {shape.pages} pages driven in {elapsed:.0f} s; baselines")
    base = await asyncio.to_thread(baselines, world, before, after, shape.pages)
    figures = report(world, before, after, served, base, shape.pages)
    new_views = {str(v): sum(1 for t in impressions[v] if 0 <= t - r <= 300) for v, r in ready_at.items()}
    figures["new_uploads"] = {
        "uploaded": len(impressions), "ready": len(ready_at), "impressions_within_5_min": new_views,
        # when each one's impressions came, seconds after it was seen ready (the first 30): a
        # shortfall tells a video served late from one served too little
        "impression_offsets_s": {str(v): [round(t - r, 1) for t in sorted(impressions[v])[:30]]
                                 for v, r in ready_at.items()},
        "min": min(new_views.values(), default=0), "extra_pages_asked_after_the_users": extra_pages,
        "target_met": len(ready_at) == shape.uploads and all(n >= 10 for n in new_views.values()),
    }
    figures["real_time"] = _real_time([r for r in probe_results if not r.with_token])
    figures["real_time"]["with_read_after"] = _real_time([r for r in probe_results if r.with_token])
    late = figures["pages_6_20"]
    figures["targets"] = {
        "lift_2x_most_liked": (late["lift_over_most_liked"] or 0) >= 2.0,
        "half_of_oracle": (late["share_of_oracle"] or 0) >= 0.5,
        "recovery_3_pages": figures["shift"]["recovery_pages"] is not None and figures["shift"]["recovery_pages"] <= 3,
        "coverage_30pct": figures["coverage"]["share"] >= 0.3,
        "new_uploads_10_in_5_min": figures["new_uploads"]["target_met"],
        "real_time_99pct": figures["real_time"]["target_met"],
    }
    figures["online_by_source"] = online
    figures["cpu"] = sched
    figures["stages"] = stages
    figures["driven"] = {"users": shape.users, "pages": shape.pages, "seconds": round(elapsed, 1),
                         "requests": client.requests, "errors": dict(client.errors),
                         "catalogue": shape.videos, "creators": shape.creators, "hashtags": shape.tags,
                         "shifting_users": sum(a is not None for a in after), "time_scale": TIME_SCALE,
                         "latency_ms": {k: _quantiles(v) for k, v in client.latency.items()}}
    return figures
