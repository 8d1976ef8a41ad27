"""The benchmark corpus, written in batches straight to CQL and Redis (no API, no password hashing).

Ids are deterministic (``USER_BASE + i``, ``VIDEO_BASE + j``) so a corpus already in the bench
keyspace is recognised and reused: the CQL part is written once, Redis (derived data only) is
rebuilt on every run. Videos are what the media worker writes for a processed upload, all sharing
one small media object (:mod:`clipstream.workers.seed`).

Shape: ``users`` users; the first ``authors`` of them post ``videos / authors`` videos each; every
user follows ``FOLLOWS`` authors and has liked ``LIKES`` videos (likes_by_user rows, stats rows and
Redis counts agree).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import msgspec
from redis.asyncio import Redis

from clipstream.http.security import Tokens
from clipstream.storage.cache import FRESH_KEEP, POPULAR_KEEP, Cache
from clipstream.storage.cql import Cql
from clipstream.storage.models import Stats, VideoCard
from clipstream.storage.repos import StatsRepo
from clipstream.workers.seed import SHARED_MEDIA_KEY, SHARED_THUMB_KEY

__all__ = ["Corpus", "CorpusShape", "mint_tokens", "publish_cards", "seed_corpus", "seed_extra_cards",
           "seed_like_targets"]

USER_BASE = 7_000_000_000
VIDEO_BASE = 8_000_000_000_000
#: ids of the Redis-only cards of the corpus-growth scenario start here
EXTRA_BASE = 9_000_000_000_000
FOLLOWS = 5
LIKES = 5
CQL_CONCURRENCY = 512
REDIS_CHUNK = 5_000
#: bump when the shape or the rows change, so an old corpus is not reused
CORPUS_VERSION = 1

Progress = Callable[[str], None]
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class CorpusShape:
    users: int = 10_000
    authors: int = 1_000
    videos: int = 100_000


@dataclass(frozen=True, slots=True)
class Corpus:
    """Ids of a seeded corpus, and the like count each video was seeded with."""

    shape: CorpusShape
    user_ids: list[int]
    video_ids: list[int]
    likes: dict[int, int]

    def author_of(self, video_id: int) -> int:
        return USER_BASE + (video_id - VIDEO_BASE) % self.shape.authors


def username(user_id: int) -> str:
    return f"b{user_id - USER_BASE}"


def _plan(shape: CorpusShape) -> Corpus:
    users = [USER_BASE + i for i in range(shape.users)]
    videos = [VIDEO_BASE + j for j in range(shape.videos)]
    rng = random.Random(CORPUS_VERSION)
    likes: dict[int, int] = {}
    for _ in users:
        for vid in rng.sample(videos, LIKES):
            likes[vid] = likes.get(vid, 0) + 1
    return Corpus(shape, users, videos, likes)


def _created_at(video_id: int, now_ms: int) -> int:
    # One video a second into the past: the corpus has a freshness order like a real one.
    return now_ms - (video_id - VIDEO_BASE) * 1000 - 60_000


async def _corpus_present(cql: Cql, corpus: Corpus) -> bool:
    last_user, last_video = corpus.user_ids[-1], corpus.video_ids[-1]
    marker = await cql.execute("SELECT likes FROM stats WHERE id = ?", (-CORPUS_VERSION - corpus.shape.videos,))
    rows = await cql.execute("SELECT user_id FROM users WHERE user_id = ?", (last_user,))
    vrows = await cql.execute("SELECT video_id FROM videos WHERE video_id = ?", (last_video,))
    return bool(marker and rows and vrows)


async def _seed_cql(cql: Cql, corpus: Corpus, progress: Progress) -> None:
    shape, now = corpus.shape, int(time.time() * 1000)
    run = lambda stmt, rows: cql.execute_many(stmt, rows, concurrency=CQL_CONCURRENCY)  # noqa: E731
    progress(f"seed: {shape.users:,} users")
    await run(
        "INSERT INTO users (user_id, username, email, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, false, ?)",
        # No usable password: bench users authenticate with tokens minted by the bench.
        [(u, username(u), f"{username(u)}@bench.invalid", "!", now) for u in corpus.user_ids],
    )
    await run("INSERT INTO users_by_username (username, user_id) VALUES (?, ?)",
              [(username(u), u) for u in corpus.user_ids])
    for start in range(0, shape.videos, 20_000):
        chunk = corpus.video_ids[start : start + 20_000]
        progress(f"seed: videos {start + len(chunk):,}/{shape.videos:,}")
        await run(
            "INSERT INTO videos (video_id, author_id, status, file_size, file_format, upload_key, media_key, "
            "thumb_key, duration, width, height, created_at, ready_at, deleted) "
            "VALUES (?, ?, 'ready', 1, 'mp4', ?, ?, ?, 5.0, 720, 1280, ?, ?, false)",
            [(v, corpus.author_of(v), f"bench/{v}.mp4", SHARED_MEDIA_KEY, SHARED_THUMB_KEY, _created_at(v, now),
              _created_at(v, now)) for v in chunk],
        )
        await run("INSERT INTO videos_by_author (author_id, video_id) VALUES (?, ?)",
                  [(corpus.author_of(v), v) for v in chunk])
    progress(f"seed: follows and likes of {shape.users:,} users")
    rng = random.Random(CORPUS_VERSION + 1)
    authors = corpus.user_ids[: shape.authors]
    follows = [(u, a) for u in corpus.user_ids for a in rng.sample(authors, FOLLOWS) if a != u]
    await run("INSERT INTO follows (user_id, author_id) VALUES (?, ?)", follows)
    await run("INSERT INTO followers (author_id, user_id) VALUES (?, ?)", [(a, u) for u, a in follows])
    rng = random.Random(CORPUS_VERSION)
    likes = [(u, v) for u in corpus.user_ids for v in rng.sample(corpus.video_ids, LIKES)]  # as _plan drew them
    await run("INSERT INTO likes_by_user (user_id, video_id, author_id, liked_at) VALUES (?, ?, ?, ?)",
              [(u, v, corpus.author_of(v), now) for u, v in likes])
    # applied_seq 0: any like event on the bus is newer than the seeded count (sequence fencing).
    await StatsRepo(cql).put_many([Stats(vid, n) for vid, n in corpus.likes.items()])
    await cql.execute("INSERT INTO stats (id, likes) VALUES (?, ?)", (-CORPUS_VERSION - shape.videos, 1))


async def publish_cards(redis: Redis, cache: Cache, cards: Sequence[VideoCard], likes: dict[int, int],
                        candidates: bool) -> None:
    """Cards and like counts in chunked pipelines (what ``Cache.publish_video`` writes, batched),
    with the candidate entries and the hashtags of captioned cards when ``candidates``."""
    ns = cache.ns
    for start in range(0, len(cards), REDIS_CHUNK):
        chunk = cards[start : start + REDIS_CHUNK]
        pipe = redis.pipeline(transaction=False)
        # The key layout is Cache's: its own helpers name the keys.
        pipe.mset({cache._card(c.video_id): _encode(c) for c in chunk})  # noqa: SLF001
        pipe.mset({cache._likes(c.video_id): likes.get(c.video_id, 0) for c in chunk})  # noqa: SLF001
        if candidates:
            pipe.zadd(f"{ns}:fresh", {str(c.video_id): c.created_at for c in chunk})
            pipe.zadd(f"{ns}:popular", {str(c.video_id): likes.get(c.video_id, 0) for c in chunk})
            pipe.hset(f"{ns}:authors", mapping={str(c.video_id): c.author_id for c in chunk})
            tagged = {str(c.video_id): " ".join(c.hashtags) for c in chunk if c.hashtags}
            if tagged:
                pipe.hset(f"{ns}:tags", mapping=tagged)
        await pipe.execute()
    if candidates:
        pipe = redis.pipeline(transaction=False)
        pipe.zremrangebyrank(f"{ns}:fresh", 0, -FRESH_KEEP - 1)
        pipe.zremrangebyrank(f"{ns}:popular", 0, -POPULAR_KEEP - 1)
        # The lists are built: without this sentinel the worker's cache keeper would rebuild them
        # from every ready video in Scylla (storage/cache.py), undoing the corpus size under test.
        pipe.set(f"{ns}:built", b"1")
        await pipe.execute()




async def seed_corpus(cql: Cql, redis: Redis, shape: CorpusShape, progress: Progress) -> Corpus:
    """The corpus of ``shape``: CQL rows (reused when present) and a fresh Redis database."""
    corpus = _plan(shape)
    if await _corpus_present(cql, corpus):
        progress(f"seed: CQL corpus v{CORPUS_VERSION} already present ({shape.videos:,} videos): reused")
    else:
        started = time.monotonic()
        await _seed_cql(cql, corpus, progress)
        progress(f"seed: CQL corpus written in {time.monotonic() - started:.0f} s")
    await redis.flushdb(asynchronous=True)
    await seed_cards(redis, corpus, corpus.video_ids)
    return corpus


async def seed_cards(redis: Redis, corpus: Corpus, video_ids: Sequence[int]) -> None:
    """Redis cards, counts and candidate entries of corpus videos."""
    now = int(time.time() * 1000)
    cards = [VideoCard(v, corpus.author_of(v), username(corpus.author_of(v)), SHARED_MEDIA_KEY, SHARED_THUMB_KEY,
                       5.0, _created_at(v, now)) for v in video_ids]
    await publish_cards(redis, Cache(redis), cards, corpus.likes, candidates=True)


async def seed_extra_cards(redis: Redis, corpus: Corpus, count: int, progress: Progress) -> None:
    """``count`` Redis-only cards (+ counts and candidate entries), older than the corpus's videos."""
    now = int(time.time() * 1000)
    step = 100_000
    for start in range(0, count, step):
        ids = range(EXTRA_BASE + start, EXTRA_BASE + min(start + step, count))
        author = corpus.user_ids[0]
        cards = [VideoCard(v, author, username(author), SHARED_MEDIA_KEY, SHARED_THUMB_KEY, 5.0,
                           now - 10**9 - (v - EXTRA_BASE)) for v in ids]
        await publish_cards(redis, Cache(redis), cards, {}, candidates=True)
        progress(f"seed: Redis-only cards {start + len(cards):,}/{count:,}")


async def seed_like_targets(cql: Cql, redis: Redis, corpus: Corpus, count: int) -> list[int]:
    """``count`` fresh videos (new ids each run, no likes yet) for the like scenario to count on."""
    from clipstream.storage.ids import new_id

    now = int(time.time() * 1000)
    author = corpus.user_ids[1]
    ids = [new_id() for _ in range(count)]
    await cql.execute_many(
        "INSERT INTO videos (video_id, author_id, status, file_size, file_format, upload_key, media_key, thumb_key, "
        "duration, width, height, created_at, ready_at, deleted) "
        "VALUES (?, ?, 'ready', 1, 'mp4', ?, ?, ?, 5.0, 720, 1280, ?, ?, false)",
        [(v, author, f"bench/{v}.mp4", SHARED_MEDIA_KEY, SHARED_THUMB_KEY, now, now) for v in ids],
        concurrency=CQL_CONCURRENCY,
    )
    cards = [VideoCard(v, author, username(author), SHARED_MEDIA_KEY, SHARED_THUMB_KEY, 5.0, now) for v in ids]
    # Not candidates: the feed scenarios' pages stay the corpus's.
    await publish_cards(redis, Cache(redis), cards, {}, candidates=False)
    return ids


async def forget_feeds(cql: Cql, user_ids: Sequence[int]) -> None:
    """Clear what these users' feeds were served (pages, state, pre-migration served rows), in the
    bench's keyspace: they start like the corpus made them (follows and likes kept)."""
    rows = [(u,) for u in user_ids]
    for table in ("feed_pages", "feed_state", "feed_served"):
        await cql.execute_many(f"DELETE FROM {table} WHERE user_id = ?", rows)


def mint_tokens(tokens: Tokens, user_ids: Iterable[int]) -> list[str]:
    """Access tokens of the bench users, made with the project's token code (no login round trip)."""
    return [tokens.issue(u, username(u)) for u in user_ids]
