"""UserFeed entities: a user's likes and follows (the truth of both) and their For You feed.

The entity dedupes like/unlike and follow/unfollow (a second like changes nothing) and emits the
resulting delta to the counter of the video or creator. Each like, unlike, follow, unfollow and
watch also moves the user's interest profile (:mod:`.profile`) in memory, so the next page reacts.

A page is blended from several candidate sources (:data:`SOURCES`): followed creators' new videos
(the user's inbox), the shard pool's videos of the user's strongest hashtags and authors, the
neighbours of the user's last likes in what the shard's users liked together (:mod:`.together`), the
pool's best by engagement and freshness ("trending"), and one slot of exploration for the newest
videos that this shard has shown fewer than :data:`EXPOSURE_FLOOR` times (a new creator's video
reaches viewers). Candidates are scored by freshness, engagement and the profile's affinity times
the video's quality (:data:`W_QUALITY`), plus :data:`W_NOVEL` for one the shard has not shown anyone
yet (the viewers spread over the pool); a page keeps
one video per author and at most :data:`TAG_CAP` per hashtag while it can; a video already served
is never served again. Pages are kept so that the same cursor returns the same page.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from array import array
import sys
import time
from collections import Counter
from itertools import chain, filterfalse, islice, repeat
from typing import Any, Callable, Container, Iterable

import msgspec
import structlog

from clipstream.actors.entities.compact import IdMap, IdSet, Pages, Pairs, trimmed
from clipstream.actors.entities.profile import Profile
from clipstream.actors.entities.together import LikedTogether
from clipstream.actors.entity import EntityKind, Outbox
from clipstream.bus.messages import (BusMessage, Follow, FollowDelta, LikeDelta, LikeRequest, NewVideo,
                                     Watched)
from clipstream.bus.rpc import FeedPage, FeedQuery
from clipstream.storage.cache import Cache
from clipstream.storage.hashtags import tag_id
from clipstream.storage.ids import EPOCH_MS, created_ms
from clipstream.storage.models import FeedState
from clipstream.storage.repos import FeedRepo, FollowRepo, LikeRepo

__all__ = ["SOURCES", "CandidatePool", "Changes", "FeedKind", "FeedSnapshot", "UserFeed", "build_feed", "rank",
           "rank_page"]

log = structlog.get_logger(__name__)

INBOX_KEEP = 500
#: the shard's candidate pool: the newest and the most liked videos
POOL_FRESH = 5000
POOL_POPULAR = 5000
#: pages an entity keeps to answer a repeated cursor: the one just served (what a client retry
#: asks again); an older cursor gets a fresh page, like any unknown one. Every page is
#: still stored (feed_pages); in memory they cost 8 bytes per id here, against a set of 300
#: served ids at 2.4 KB (the bulk of a feed).
PAGES_KEEP = 1
MAX_LIMIT = 50

#: where a page's videos come from, by index (impressions and likes are counted per source)
SOURCES = ("following", "hashtag", "author", "trending", "fresh", "together", "explore")
S_FOLLOWING, S_HASHTAG, S_AUTHOR, S_TRENDING, S_FRESH, S_TOGETHER, S_EXPLORE = range(len(SOURCES))
#: the profile's strongest hashtags and authors whose pool videos are candidates of a page
TOP_TAGS = 4
TOP_AUTHORS = 3
#: a hashtag's best unserved videos scored for a page (of each of the profile's TOP_TAGS), and how
#: many past those are looked at for ones the shard has not shown anyone (see W_NOVEL). With the
#: quality-weighted score (W_QUALITY) 30 made what 60 made (0.245, 0.243 in the replay of 300 users).
TAG_DEPTH = 30
TAG_DEEPER = 40
#: an author's best unserved videos scored for a page. A page takes one per author, but the best
#: for this user is not always the author's best overall: in the taste replay 10 kept the like
#: rate of 20 (0.206), 5 lost 0.005, 2 lost 0.010.
AUTHOR_DEPTH = 10
#: at most this many videos of one hashtag in a page while other candidates are left: the price
#: of diversity, measured. In the taste replay (300 users, pages 6-20, expected like rate; most
#: liked 0.139, oracle 0.469) with this scoring a cap of 5 made 0.215 (the commonest hashtag 52 %
#: of a page), 7 made 0.242 (70 %); the oracle restricted to the pool and to one video per author
#: and 5 a hashtag, given each user's true hashtags, makes 0.46 on page 1 and 0.36 on page 10; with
#: 10 a hashtag 0.58 and 0.41. Seven keeps three slots of a page off the viewer's main hashtag.
TAG_CAP = 7
#: a video of the pool's newest shown fewer times than this by the shard gets a page's exploration slot
EXPOSURE_FLOOR = 10
#: how many of the pool's newest videos are looked at for that slot
FRESH_WINDOW = 300
#: the base score: freshness (half-life about six hours) up to W_FRESH and engagement (log of the
#: like count) up to W_ENGAGE. Freshness was 0.5: it outweighed engagement, which is what tells a
#: video people like from one they do not, and ordered a hashtag's candidates by age (0.1 with
#: W_QUALITY: 0.210 -> 0.222 alone in the replay of 100 users).
W_FRESH = 0.1
W_ENGAGE = 0.35
#: weights of the profile in a candidate's score: following the author, the author's and the
#: hashtags' weights (each normalised by the profile's strongest, or by NORM_FLOOR if that is less)
W_FOLLOWING = 0.6
W_AUTHOR = 0.25
W_TAGS = 0.8
#: the profile's part of a score is multiplied by ``1 + W_QUALITY * (q - 0.5)``, ``q`` the video's
#: engagement in [0, 1]: a like is affinity times quality (a viewer likes a good video of their
#: hashtag, not any), where adding them let a mediocre match outrank a good one. With it, W_FRESH
#: 0.1 and TAG_DEPTH 60 the replay of 100 users went 0.198 -> 0.222; 0 turns it off. The pool's
#: FRESH_WINDOW newest count as q = 0.5 at least (not yet liked is not disliked).
W_QUALITY = 2.0
#: a profile whose strongest weight is under this counts as unsure: its weights are divided by
#: this, not by the strongest, so a profile decayed by skips (a taste that moved) stops ruling
#: the page and trending, fresh and liked-together candidates come through (recovery).
NORM_FLOOR = 1.0
#: added to the score of a candidate this shard has not shown to anyone yet. A hashtag's best
#: videos by the base score are the same for every viewer of it; among candidates this close,
#: the unshown one goes first and the shard's viewers spread over the pool. Measured with
#: bench/taste_replay.py (300 users turn by turn, 2 shards, pages 6-20, three world seeds), at
#: 0.2 with the additive score of before: coverage 22.9/22.7/21.8 % -> 32.7/32.1/31.9 %, like
#: rate 0.207/0.197/0.202 -> 0.208/0.202/0.209, for +18 % of rank() CPU a page. With the
#: quality-weighted score (whose profile part reaches ~3) 0.2 left 29.3 % and 0.35 32.9 % (like
#: rate 0.253 -> 0.249), 0.5 33.5 % (0.244 -> 0.241 beside 0.35). The real run at 0.35
#: (19-10-05Z) covered 27.4 % where the replay made 31.6 %: its likes raise the liked videos'
#: quality as it goes (the replay's like counts stay put), so the running system concentrates more.
W_NOVEL = 0.5
#: the viewer's recent likes whose liked-together neighbours are candidates, how many of those, and
#: the bonus of the strongest (the others by their weight). In the taste world the source was
#: neutral (0.253 and 0.252 with a bonus of 0 and 0.5, 300 users): with 300 users over 20,000
#: videos few videos are liked by two of a shard's users; it is kept for denser catalogues and
#: its like-through rate is counted like every source's.
TOGETHER_SEEDS = 5
TOGETHER_DEPTH = 20
W_TOGETHER = 0.5
#: onboarding: a user's first ONBOARD_PAGES pages also explore: high-quality videos that together
#: show as many of the pool's popular hashtags as they can (a hashtag's chance of being a viewer's
#: is about its popularity), one per author, each hashtag up to len(ONBOARD_GAIN) times (see
#: :func:`_probes`). Once the profile holds a liked hashtag, ONBOARD_EXPLOIT of each page (rounded
#: up) is ranked as usual and comes first, so a like still changes the next page; the first page of
#: a new profile is all exploration (there is nothing to rank by yet). A third of a viewer's true
#: hashtags were never shown to them by page 10 before (BENCHMARKS.md, relevance session 8), and no
#: update rule learns what it is never shown. Taste replay, 300 users, three seeds (--seed 5/6/7,
#: --tastes-seed 2/3/4), with the re-exploration below: pages 6-20 0.259/0.262/0.254 ->
#: 0.267/0.273/0.263 (lift 1.86/1.92/1.94x -> 1.92/2.01/2.01x), recovery 4/7/5 -> 4/6/5, coverage
#: 34.7/34.8/34.8 % -> 33.5/33.8/34.1 %; pages 1-5 gained too (seed 5: 0.110, 0.176, 0.214, 0.233,
#: 0.244 -> 0.194, 0.207, 0.223, 0.234, 0.272). With the whole of pages 2-4 exploring (a helper's
#: first version) pages 6-20 made 0.274 but pages 2-4 ~0.10, and a like did not change the next page.
ONBOARD_PAGES = 4
ONBOARD_EXPLOIT = 0.6
#: the pool's most common hashtags onboarding shows, and the best videos of each it looks at
#: (precomputed per pool: CandidatePool.probes; 120 a hashtag took a 10,000-video pool's build
#: from ~28 to ~46 ms, one measurement on a loaded machine)
ONBOARD_TAGS = 30
ONBOARD_DEPTH = 120
#: a hashtag's value the 1st, 2nd, ... time it is shown in onboarding (its prior times this)
ONBOARD_GAIN = (1.0, 0.7, 0.4)
#: for each place of an exploring page: how many of the hashtags worth the most then are looked
#: at, and how many eligible videos of each (by what they show of the prior times their quality)
ONBOARD_BRANCH = 8
ONBOARD_LOOK = 5
#: viewers start ONBOARD_SPREAD apart in each hashtag's list (by their key), so that they do not
#: all get its same best few. In the real taste run the first version (everyone from the top of 40)
#: covered 28.0 % of the catalogue against 30.9 % before onboarding; 10 of 40 made 28.4 %, 60 of
#: 120 28.7 % (one run each): not the whole loss. The replay showed a smaller one (34.7 -> 33.5 %,
#: and 34.6 % with 10 of 40); why the running system loses more was not found.
ONBOARD_SPREAD = 60
#: a video the shard has not shown anyone: its onboarding value times 1 + this (viewers spread)
ONBOARD_NOVEL = 0.3
#: re-exploration (a taste that moved): after REEXPLORE_AFTER served videos in a row without a
#: like, past onboarding, by a viewer who has liked before, REEXPLORE_SLOTS of the page show
#: popular hashtags the profile does not hold. Without it onboarding's recovery was 6 pages on
#: seed 5 (pages 6-20 0.268, coverage 35.3 %): better profiles hold on to the old taste longer. In
#: the helper's version a full page (10) after 10 cost stable users more than it gave the shifting
#: ones (0.259 against 0.268, recovery 4 from a lower pre-shift rate).
REEXPLORE_AFTER = 10
REEXPLORE_SLOTS = 5
#: served ids an entity remembers the source of, so a like is counted for the source that showed it
RECENT_KEEP = 20


class Changes:
    """What a feed changed since its last flush (absent while it is clean)."""

    __slots__ = ("state", "new_pages", "like_changes", "follow_changes")

    def __init__(self) -> None:
        #: a bus message was applied: the state row (sequence, inbox) must be written. Serving a
        #: page alone does not need it (the next page number follows the stored pages).
        self.state = False
        self.new_pages: list[tuple[int, list[int]]] = []
        self.like_changes: list[tuple[int, int, int, bool, int]] = []
        self.follow_changes: list[tuple[int, int, bool]] = []


class FeedSnapshot(msgspec.Struct, frozen=True, gc=False):
    """What a flush writes of one feed: its state row if it changed (None: only pages, likes or
    follows did), the pages served since the last flush, and the like and follow changes."""

    key: int
    state: FeedState | None
    new_pages: list[tuple[int, list[int]]]
    like_changes: list[tuple[int, int, int, bool, int]]
    follow_changes: list[tuple[int, int, bool]]


class UserFeed(msgspec.Struct, gc=False):
    """One user's feed state. A shard holds a hundred thousand: ids live unboxed in sorted
    arrays (see :mod:`.compact`), the per-flush changes only exist while there are some, and as
    a Struct with ``gc=False`` (it refers to arrays of ints and lists of int tuples only, so never
    to a cycle) the object is 104 bytes with its scan position, where a ``__slots__`` class took 112
    without it."""

    key: int
    seq: int = 0
    liked: IdMap = msgspec.field(default_factory=IdMap)  # video_id -> author_id
    following: IdSet = msgspec.field(default_factory=IdSet)
    served: IdSet = msgspec.field(default_factory=IdSet)
    inbox: Pairs = msgspec.field(default_factory=Pairs)  # (video, author), newest last
    next_page: int = 0
    pages: Pages = msgspec.field(default_factory=Pages)
    changes: Changes | None = None
    #: where the next page's scan of the pool may start: every candidate before ``scan_from`` in
    #: pool ``scan_pool`` was served (or is the user's own) when the last page was picked
    scan_pool: int = -1
    scan_from: int = 0
    profile: Profile = msgspec.field(default_factory=Profile)
    #: ``at`` of the newest like, follow or watch applied (what a page "reflects"; 0: none)
    feedback_at: int = 0
    #: the newest served ids and the source of each (a byte per id)
    recent: array | None = None  # type: ignore[type-arg]
    recent_src: bytes = b""

    def changed(self) -> Changes:
        if self.changes is None:
            self.changes = Changes()
        return self.changes


class CandidatePool:
    """Candidates shared by every feed in a shard, pre-ranked by their user-independent score."""

    __slots__ = ("ids", "pos", "ranked", "authors", "likes", "refreshed_at", "version", "tags", "by_tag",
                 "by_author", "newest", "under", "prior", "probes")

    def __init__(self, items: list[tuple[int, int, int]] = (), now_ms: int | None = None,  # type: ignore[assignment]
                 version: int = 0, tags: dict[int, tuple[int, ...]] | None = None) -> None:
        now = now_ms if now_ms is not None else int(time.time() * 1000)
        #: tells pools apart: a feed's scan position is only good for the pool it was taken in
        self.version = version
        self.authors = {v: a for v, a, _ in items}
        self.likes = {v: n for v, _, n in items}
        # The base score is computed once per refresh, not once per candidate per page (it moves
        # by a hair in the second before the next refresh); inlined, as a call per candidate was
        # a tenth of a feed shard's time.
        hours, engage, half, fresh, cap = 3_600_000.0, W_ENGAGE / math.log1p(1000), 6.0, W_FRESH, W_ENGAGE
        log1p, epoch = math.log1p, EPOCH_MS
        scored = sorted(
            (
                (fresh / (1.0 + max(0.0, (now - epoch - (v >> 22)) / hours) / half) + min(cap, engage * log1p(n)), v)
                for v, _, n in items
            ),
            reverse=True,
        )
        #: video ids best first: what a page scans, through a C-level filter of the served ones
        self.ids = [v for _, v in scored]
        #: video id -> its index in ``ids``
        self.pos = {v: i for i, v in enumerate(self.ids)}
        #: video id -> (author, base score)
        self.ranked = {v: (self.authors[v], s) for s, v in scored}
        #: video id -> its hashtag ids (videos without hashtags are absent)
        self.tags = tags if tags is not None else {}
        #: hashtag id / author -> their videos, best first: the per-hashtag and per-author sources
        self.by_tag: dict[int, list[int]] = {}
        self.by_author: dict[int, list[int]] = {}
        tags_of = self.tags.get
        for v in self.ids:
            self.by_author.setdefault(self.authors[v], []).append(v)
            for t in tags_of(v, ()):
                self.by_tag.setdefault(t, []).append(v)
        #: the newest videos, newest first (ids are time-ordered): the exploration source
        self.newest = sorted(self.authors, reverse=True)[:FRESH_WINDOW]
        #: the newest that may still be under the exposure floor, newest first: what a page's
        #: exploration slot looks at. The feed kind drops a video once it reaches the floor, so
        #: a page does not walk all 300 newest once they are exposed (it did: 300 checks a page).
        self.under = list(self.newest)
        #: hashtag -> its share of the pool's hashtag occurrences (its prior of being a viewer's),
        #: for the ONBOARD_TAGS commonest
        counts = sorted(((len(vs), t) for t, vs in self.by_tag.items()), reverse=True)[:ONBOARD_TAGS]
        total = sum(len(vs) for vs in self.by_tag.values()) or 1
        self.prior = {t: n / total for n, t in counts}
        prior, lq = self.prior, 1.0 / math.log1p(1000)
        #: hashtag of the prior -> the onboarding candidates among its ONBOARD_DEPTH best videos, by
        #: what they show of the prior times their quality, best first: (that value, quality
        #: weight, video, author, its hashtags of the prior)
        self.probes: dict[int, list[tuple[float, float, int, int, tuple[int, ...]]]] = {}
        for t in prior:
            rows = []
            for v in self.by_tag[t][:ONBOARD_DEPTH]:
                held = tuple(x for x in self.tags[v] if x in prior)
                quality = 0.4 + min(1.0, math.log1p(self.likes[v]) * lq)
                rows.append((quality * sum(prior[x] for x in held), quality, v, self.authors[v], held))
            self.probes[t] = sorted(rows, reverse=True)
        self.refreshed_at = now


def base_score(video_id: int, likes: int, now_ms: int) -> float:
    """Freshness (half-life about six hours) and engagement (log of likes), user-independent."""
    age_h = max(0.0, (now_ms - created_ms(video_id)) / 3_600_000)
    return W_FRESH / (1.0 + age_h / 6.0) + W_ENGAGE * min(1.0, math.log1p(likes) / math.log1p(1000))


#: most served ids a resumed scan copies into a set (timeit on the 2-core machine, 2026-11-24:
#: a set of 1,000 ids builds in ~29 µs, of 3,000 in ~83; 120 checks of the array cost 125-150 µs,
#: of a set ~5 µs; by its page rate a feed bench user holds several hundred to ~2,000 by the end)
_SERVED_SET_MAX = 1024


def rank_page(feed: UserFeed, pool: CandidatePool, limit: int, exposure: dict[int, int] | None = None,
              shown: Container[int] | None = None, together: LikedTogether | None = None) -> list[int]:
    """The ids :func:`rank` picks."""
    return [v for v, _, _ in rank(feed, pool, limit, exposure, shown, together)]


def rank(feed: UserFeed, pool: CandidatePool, limit: int, exposure: dict[int, int] | None = None,
         shown: Container[int] | None = None, together: LikedTogether | None = None) -> list[tuple[int, int, int]]:
    """Pick up to ``limit`` unserved videos as (video, author, source): the candidates of every
    source scored by the base score and the user's profile (and :data:`W_NOVEL` for one not in
    ``shown``, what the shard has served anyone), one per author and at most :data:`TAG_CAP` per
    hashtag while possible, and the last slot for exploration when the pool's newest hold a video
    ``exposure`` (shard-wide impressions) shows fewer than :data:`EXPOSURE_FLOOR` times."""
    now = int(time.time() * 1000)
    window = limit * 4
    profile = feed.profile
    tag_w, author_w = profile.tag_weights(), profile.author_weights()
    # Normalised so the strongest weight counts 1: a keen liker's profile and a new one's rank alike.
    tag_norm = max(NORM_FLOOR, max((abs(w) for w in tag_w.values()), default=1.0)) or 1.0
    author_norm = max(NORM_FLOOR, max((abs(w) for w in author_w.values()), default=1.0)) or 1.0
    tag_get, author_get, tags_of = tag_w.get, author_w.get, pool.tags.get
    # A keen user has been served hundreds of videos, mostly the best of the pool. The scan of the
    # pool starts where the last page's stopped finding served ones (same pool only), so a page
    # costs about its window, not the user's history. The served ids are checked inside C
    # (filterfalse over set.__contains__) through a set built for the page when that is cheaper
    # than the sorted array's Python-level check: ~0.03 µs an id to build against ~1 µs a check,
    # and a resumed scan checks about a window and a page (~70 ids), a first scan many more.
    start = feed.scan_from if feed.scan_pool == pool.version else 0
    served = feed.served
    use_set = len(served) > 32 and (start == 0 or len(served) <= _SERVED_SET_MAX)
    is_served = set(served).__contains__ if use_set else served.__contains__
    key, ranked = feed.key, pool.ranked
    following = set(feed.following) if len(feed.following) > 8 else feed.following

    novel, deeper = (W_NOVEL, TAG_DEEPER) if shown is not None else (0.0, 0)
    shown = shown if shown is not None else ()

    zeros = repeat(0.0)  # the default of each tag_get in map(): a C-level loop, not a generator's

    near: dict[int, float] = {}
    if together is not None and together.links and feed.recent is not None and feed.liked:
        seeds = [v for v in reversed(feed.recent) if v in feed.liked][:TOGETHER_SEEDS]
        near = {v: W_TOGETHER * w for v, w in together.neighbours(seeds, TOGETHER_DEPTH, served)}
    near_get = near.get
    log1p = math.log1p
    likes_of, lq, wq = pool.likes.get, 1.0 / math.log1p(1000), W_QUALITY
    # The pool's newest have had no time to be liked: their quality is unknown, not poor.
    newest = pool.newest
    fresh_from = newest[-1] if len(newest) >= FRESH_WINDOW else 0

    def personal(base: float, vid: int, author: int) -> float:
        score = base + (W_FOLLOWING if author in following else 0.0) + (0.0 if vid in shown else novel)
        if near:
            score += near_get(vid, 0.0)
        aff = 0.0
        if author_w:
            aff += W_AUTHOR * author_get(author, 0.0) / author_norm
        if tag_w:
            aff += W_TAGS * max(-1.0, min(1.5, sum(map(tag_get, tags_of(vid, ()), zeros)) / tag_norm))
        if wq and aff > 0:
            q = min(1.0, log1p(likes_of(vid, 0)) * lq)
            if q < 0.5 and vid >= fresh_from:
                q = 0.5
            aff *= 1.0 + wq * (q - 0.5)
        return score + aff

    scored: list[tuple[float, int, int, int]] = []
    seen: set[int] = set()
    # Followed creators' new videos, newest first; the window's worth is enough for a page.
    for vid, author in islice(filterfalse(lambda p: is_served(p[0]), feed.inbox.reversed_pairs()), window):
        scored.append((personal(base_score(vid, pool.likes.get(vid, 0), now), vid, author), vid, author, S_FOLLOWING))
        seen.add(vid)
    # The profile's strongest hashtags and authors: their best unserved videos in the pool.
    # Past a hashtag's TAG_DEPTH best, only the ones the shard has not shown anyone are scored.
    for source, lists, depth, more in (
        (S_HASHTAG, [pool.by_tag.get(t, ()) for t in profile.top_tags(TOP_TAGS)], TAG_DEPTH, deeper),
        (S_AUTHOR, [pool.by_author.get(a, ()) for a in profile.top_authors(TOP_AUTHORS)], AUTHOR_DEPTH, 0),
    ):
        for videos in lists:
            for i, vid in enumerate(islice(filterfalse(is_served, videos), depth + more)):
                if i >= depth and vid in shown:
                    continue
                author, base = ranked[vid]
                if author == key or vid in seen:
                    continue
                seen.add(vid)
                scored.append((personal(base, vid, author), vid, author, source))
    # Liked together: the neighbours of what the viewer liked in their last pages (after the other
    # sources, which their bonus in personal() reaches too).
    for vid in near:
        hit = ranked.get(vid)
        if hit is None or vid in seen or hit[0] == key:
            continue
        seen.add(vid)
        scored.append((personal(hit[1], vid, hit[0]), vid, hit[0], S_TOGETHER))
    # Trending: the pool's best by the base score, until the window holds enough authors for a
    # page of one video each (a burst of uploads by a few creators fills the top otherwise).
    first = None  # the first candidate not served and not the user's own
    taken = 0
    trending_authors: set[int] = set()
    for vid in filterfalse(is_served, islice(pool.ids, start, None)):
        if taken >= window and (len(trending_authors) >= limit or taken >= window * 5):
            break
        author, base = ranked[vid]
        if author == key:
            continue
        if first is None:
            first = vid
        if vid in seen:
            continue
        seen.add(vid)
        taken += 1
        trending_authors.add(author)
        scored.append((personal(base, vid, author), vid, author, S_TRENDING))
    feed.scan_pool, feed.scan_from = pool.version, pool.pos[first] if first is not None else len(pool.ids)
    scored.sort(reverse=True)
    explore = None
    if exposure is not None and limit > 1:
        for vid in pool.under:
            # (a candidate of another source too: its score may not take it onto the page)
            if exposure.get(vid, 0) < EXPOSURE_FLOOR and not is_served(vid):
                author = pool.authors[vid]
                if author != key:
                    explore = (vid, author, S_FRESH)
                    break
    room = limit - (explore is not None)
    picked: list[tuple[int, int, int]] = []
    authors_in_page: set[int] = set()
    tags_in_page: Counter[int] = Counter()
    rest: list[tuple[int, int, int]] = []
    skip = {explore[0]} if explore is not None else set()
    if explore is not None:
        authors_in_page.add(explore[1])
    probes = _explore_count(feed, room)
    explored: list[tuple[int, int, int]] = []
    if probes:
        # followed creators' new videos keep their places: what the viewer asked for comes first
        probes = min(probes, room - min(room, sum(1 for s in scored if s[3] == S_FOLLOWING)))
        for vid, author, tags in _probes(feed, pool, probes, is_served, shown, authors_in_page | {key}):
            explored.append((vid, author, S_EXPLORE))
            authors_in_page.add(author)
            tags_in_page.update(tags_of(vid, ()))
            skip.add(vid)
    room -= len(explored)
    for _, vid, author, source in scored:
        if len(picked) >= room:
            break
        if vid in skip:
            continue
        tags = tags_of(vid, ())
        if author in authors_in_page or any(tags_in_page[t] >= TAG_CAP for t in tags):
            rest.append((vid, author, source))  # diversity: only if nothing else is left
            continue
        picked.append((vid, author, source))
        authors_in_page.add(author)
        tags_in_page.update(tags)
    picked.extend(rest[: room - len(picked)])
    picked.extend(explored)  # after the ranked ones: a like's effect is at the top of the next page
    if explore is not None:
        picked.append(explore)
    return picked


def _explore_count(feed: UserFeed, room: int) -> int:
    """How many of a page's ``room`` places go to exploration (:data:`ONBOARD_PAGES`,
    :data:`REEXPLORE_AFTER`)."""
    page = feed.next_page
    if page < ONBOARD_PAGES:
        if not ONBOARD_EXPLOIT or not feed.profile.top_tags(1):
            return room
        return room - math.ceil(room * ONBOARD_EXPLOIT)
    # (the window must be past onboarding, whose pages are not meant for likes)
    recent, liked = feed.recent, feed.liked
    if (REEXPLORE_AFTER and REEXPLORE_SLOTS and liked and recent is not None and len(recent) >= REEXPLORE_AFTER
            and (page - ONBOARD_PAGES) * room >= REEXPLORE_AFTER
            and not any(v in liked for v in recent[-REEXPLORE_AFTER:])):
        return min(room, REEXPLORE_SLOTS)
    return 0


def _probes(feed: UserFeed, pool: CandidatePool, n: int, is_served: Callable[[int], bool], shown: Container[int],
            authors: set[int]) -> list[tuple[int, int, tuple[int, ...]]]:
    """Up to ``n`` videos that together show the most of the pool's popular hashtags the viewer has
    not been shown enough (greedy on their prior, one video per author): (video, author, hashtags)."""
    prior = pool.prior
    if not prior:
        return []
    gains = ONBOARD_GAIN
    count: Counter[int] = Counter()
    if feed.next_page < ONBOARD_PAGES:  # what onboarding has shown so far (at most a few pages)
        shown_before: Iterable[int] = feed.served
    else:  # a taste that moved: the hashtags it held and the ones just shown are not what is looked for
        for t in feed.profile.top_tags(8):
            count[t] = len(gains)
        shown_before = feed.recent if feed.recent is not None else ()
    tags_of = pool.tags.get
    for v in shown_before:
        for t in tags_of(v, ()):
            count[t] += 1

    def value(tags: tuple[int, ...], quality: float, vid: int) -> float:
        g = sum(prior[t] * gains[count[t]] for t in tags if count[t] < len(gains))
        return g * quality * (1.0 if vid in shown else 1.0 + ONBOARD_NOVEL)

    # Greedy over hashtags, then videos: each place goes to the best video (its value over all its
    # hashtags) among the first ONBOARD_LOOK eligible ones of the ONBOARD_BRANCH hashtags worth the
    # most now. An exact greedy over every candidate valued ~1,200 of them a page (3 ms); this
    # values ~100 and made the same like rates in the taste replay.
    lists, tried = pool.probes, set()
    out: list[tuple[int, int, tuple[int, ...]]] = []
    while len(out) < n:
        open_tags = heapq.nlargest(ONBOARD_BRANCH, ((prior[t] * gains[c], t) for t in prior
                                                    if (c := count[t]) < len(gains)))
        best, best_v = None, 0.0
        for _, t in open_tags:
            looked = 0
            rows: Iterable[tuple[float, float, int, int, tuple[int, ...]]] = lists[t]
            if ONBOARD_SPREAD and len(lists[t]) > ONBOARD_SPREAD:
                at = (feed.key * 31 + t) % ONBOARD_SPREAD  # (see ONBOARD_SPREAD)
                rows = chain(islice(lists[t], at, None), islice(lists[t], at))
            for _, quality, vid, author, tags in rows:
                if author in authors or vid in tried or is_served(vid):
                    continue
                v = value(tags, quality, vid)
                if v > best_v:
                    best, best_v = (vid, author, tags), v
                looked += 1
                if looked >= ONBOARD_LOOK:
                    break
        if best is None:
            break
        out.append(best)
        tried.add(best[0])
        authors.add(best[1])
        for t in best[2]:
            count[t] += 1
    return out


_query_decoder = msgspec.json.Decoder(FeedQuery)
_encoder = msgspec.json.Encoder()


class FeedKind(EntityKind[UserFeed]):
    """Loads a user's likes, follows and feed state; flushes their changes; answers page queries."""

    name = "feed"
    #: a feed flush costs per event: a like row and an outbox publish per like or follow (a like
    #: run at ~3k/s flushed every ~5 s with the default rest, 20-38k messages unacked)
    flush_rest = 0.5

    def __init__(self, feeds: FeedRepo, likes: LikeRepo, follows: FollowRepo, cache: Cache,
                 subject_for: Callable[[BusMessage], str], refresh_every: float = 1.0,
                 rebuild_every: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.feeds = feeds
        self.likes_repo = likes
        self.follows_repo = follows
        self.cache = cache
        self.subject_for = subject_for
        self.refresh_every = refresh_every
        #: a pool whose newest videos did not change is rebuilt for its like counts at most this
        #: often (see :meth:`refresh`)
        self.rebuild_every = rebuild_every
        self.clock = clock
        self._built_at = float("-inf")
        self.pool = CandidatePool()
        self._lists: tuple[list[bytes], list[bytes]] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._first_pool = asyncio.Event()
        #: impressions this shard made of the pool's newest videos (the exploration floor)
        self.exposure: dict[int, int] = {}
        #: online evaluation, per source (:data:`SOURCES`): videos served, and likes of them
        self.impressions = [0] * len(SOURCES)
        self.source_likes = [0] * len(SOURCES)
        #: the pool's videos this shard has served to anyone (forgets those that leave the pool)
        self.shown: set[int] = set()
        #: item-to-item neighbours from this shard's likes (the "together" source)
        self.together = LikedTogether()
        #: impressions counted into ``exposure`` (which forgets videos that leave the pool's newest)
        self.new_video_impressions = 0
        self.refresh_errors = 0

    def key_of(self, message: BusMessage) -> int:
        if isinstance(message, (LikeRequest, Follow, NewVideo, Watched)):
            return message.user_id
        raise TypeError(f"a feed does not take {type(message).__name__}")

    async def load(self, keys: list[int]) -> dict[int, UserFeed]:
        if self._refresher is None:  # first load runs on the shard's I/O loop: refresh from there on
            # Set before any await: loads of many partitions run concurrently, and each one that
            # saw None here used to start its own refresher (28.7 pool refreshes/s for 2 shards).
            self._refresher = asyncio.get_running_loop().create_task(self._refresh_forever())
        if not self._first_pool.is_set():
            await self._first_pool.wait()
        loaded = await asyncio.gather(*(self._load_one(k) for k in keys))
        return {f.key: f for f in loaded}

    async def _load_one(self, key: int) -> UserFeed:
        stored, liked, following = await asyncio.gather(
            self.feeds.load(key), self.likes_repo.liked_by(key), self.follows_repo.following(key)
        )
        return build_feed(key, stored.applied_seq, stored.next_page, stored.inbox, stored.served, stored.pages,
                          liked, following, stored.profile)

    async def refresh(self) -> None:
        """Rebuild the shard's candidate pool from Redis, unless its lists did not change: then the
        pool stays (and with it every feed's scan position).

        New or deleted videos (the newest list) rebuild it at once: a new creator's video must
        reach viewers. A change of the most-liked list alone (like counts, and videos crossing
        its edge) waits until the pool is :attr:`rebuild_every` old. While likes flowed the lists
        changed every second, and a rebuild every second was a third of a feed shard's CPU in the
        taste scenario (py-spy, 2026-12-07: refresh and build 35 % of its busy samples, ranking
        12 %); the engagement term it refreshes moves by a hair in ten seconds. A deleted video
        still in the pool meanwhile is dropped when the page is hydrated (no card)."""
        lists = await self.cache.candidate_lists(fresh=POOL_FRESH, popular=POOL_POPULAR)
        if lists == self._lists:
            return
        if self._lists is not None and lists[0] == self._lists[0] \
                and self.clock() - self._built_at < self.rebuild_every:
            return
        items = await self.cache.candidates(POOL_FRESH, POOL_POPULAR, known_authors=self.pool.authors, lists=lists)
        # A video's hashtags change only by an edit: the pool's are kept, the new videos' read.
        # (An edit reaches a pool when the video leaves it and comes back, or at a restart.)
        old = self.pool
        tags = {v: old.tags[v] for v, _, _ in items if v in old.tags}
        tags.update(await self.cache.tags_of([v for v, _, _ in items if v not in old.authors]))
        # Building a pool of 10k candidates is 40-60 ms of Python, once a second while likes move
        # the lists. On the I/O loop every query waited behind it; on a worker thread the loop
        # keeps answering meanwhile (a shard hands the GIL over every 0.5 ms). Nothing else
        # touches ``items`` or ``tags``: they are this refresh's own.
        self.pool = await asyncio.to_thread(self._build_pool, items, old.version + 1, tags)
        self._built_at = self.clock()
        newest = set(self.pool.newest)
        self.exposure = exposure = {v: n for v, n in self.exposure.items() if v in newest}
        self.pool.under = [v for v in self.pool.newest if exposure.get(v, 0) < EXPOSURE_FLOOR]
        in_pool = self.pool.authors
        self.shown = {v for v in self.shown if v in in_pool}
        self.together.keep_only(in_pool)
        self._lists = lists

    def _build_pool(self, items: list[tuple[int, int, int]], version: int,
                    tags: dict[int, tuple[int, ...]]) -> CandidatePool:
        started = time.perf_counter()
        pool = CandidatePool(items, version=version, tags=tags)
        if self.timings is not None:
            self.timings["pool_build"].observe(time.perf_counter() - started)
        return pool

    async def _refresh_forever(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # Redis away: keep serving the last pool
                self.refresh_errors += 1
                if self.refresh_errors & (self.refresh_errors - 1) == 0:  # 1st, 2nd, 4th, 8th...: not once a second
                    log.warning("candidate pool refresh failed; serving the last pool", error=repr(exc),
                                failures=self.refresh_errors)
            self._first_pool.set()  # tried once: the first loads go on (with an empty pool if Redis is away)
            await asyncio.sleep(self.refresh_every)

    def handle(self, entity: UserFeed, message: BusMessage, seq: int, outbox: Outbox) -> bool:
        if seq <= entity.seq:
            return False
        entity.seq = seq
        entity.changed().state = True
        if isinstance(message, LikeRequest):
            self._like(entity, message, seq, outbox)
        elif isinstance(message, Follow):
            self._follow(entity, message, seq, outbox)
        elif isinstance(message, Watched):
            # every view is an example for the profile; a liked video's came with its like
            if message.video_id not in entity.liked:
                entity.profile.viewed(message.author_id, map(tag_id, message.hashtags), message.watched_ms,
                                      message.duration_ms)
            entity.feedback_at = max(entity.feedback_at, message.at)
        elif isinstance(message, NewVideo):
            video, author = message.video_id, message.author_id
            if video not in entity.served and not entity.inbox.has(video, author):
                entity.inbox.push(video, author)
                entity.inbox.keep_last(INBOX_KEEP)
                entity.inbox = trimmed(entity.inbox)
        return True

    def _like(self, feed: UserFeed, m: LikeRequest, seq: int, outbox: Outbox) -> None:
        if m.like == (m.video_id in feed.liked):
            return  # a second like, or an unlike of a video never liked: nothing changes
        if m.like:
            feed.liked.set(m.video_id, m.author_id)
            feed.liked = trimmed(feed.liked)
            if feed.recent is not None and m.video_id in feed.recent:
                self.source_likes[feed.recent_src[feed.recent.index(m.video_id)]] += 1
                liked = feed.liked
                self.together.observe(m.video_id, [v for v in feed.recent if v in liked and v != m.video_id])
        else:
            feed.liked.remove(m.video_id)
            self.together.unobserve(m.video_id)
        feed.profile.learn(m.author_id, map(tag_id, m.hashtags), 1.0 if m.like else 0.0)
        feed.feedback_at = max(feed.feedback_at, m.at)
        feed.changed().like_changes.append((feed.key, m.video_id, m.author_id, m.like, m.at))
        delta = LikeDelta(video_id=m.video_id, user_id=feed.key, delta=1 if m.like else -1, at=m.at)
        outbox.publish(self.subject_for(delta), delta, f"like:{feed.key}:{m.video_id}:{seq}")

    def _follow(self, feed: UserFeed, m: Follow, seq: int, outbox: Outbox) -> None:
        if m.author_id == feed.key or m.follow == (m.author_id in feed.following):
            return
        if m.follow:
            feed.following.add(m.author_id)
            feed.following = trimmed(feed.following)
        else:
            feed.following.discard(m.author_id)
        feed.profile.learn(m.author_id, (), 1.0 if m.follow else 0.0)
        feed.feedback_at = max(feed.feedback_at, m.at)
        feed.changed().follow_changes.append((feed.key, m.author_id, m.follow))
        delta = FollowDelta(author_id=m.author_id, user_id=feed.key, delta=1 if m.follow else -1, at=m.at)
        outbox.publish(self.subject_for(delta), delta, f"follow:{feed.key}:{m.author_id}:{seq}")

    def query(self, entity: UserFeed, request: bytes) -> tuple[bytes, bool]:
        q = _query_decoder.decode(request)
        limit = max(1, min(MAX_LIMIT, q.limit))
        if q.page is not None:
            ids = entity.pages.get(q.page)
            if ids is not None:  # the same cursor again: the same page
                return _encoder.encode(FeedPage(q.page, ids, q.page + 1 if ids else None,
                                                flags=self._flags(entity, ids),
                                                feedback_at=entity.feedback_at)), False
            if q.page < entity.next_page:  # an older page: the same page too, read from storage
                return _encoder.encode(FeedPage(q.page, [], None, stored=True, feedback_at=entity.feedback_at)), False
        page = entity.next_page
        picked = rank(entity, self.pool, limit, self.exposure, self.shown, self.together)
        ids = [v for v, _, _ in picked]
        self._count(entity, picked)
        entity.next_page += 1
        entity.pages.put(page, ids, PAGES_KEEP)
        entity.served.update(ids)
        entity.served = trimmed(entity.served)  # the bulk of a feed: no spare room kept
        changes = entity.changed()
        changes.new_pages.append((page, ids))
        if ids and entity.inbox:  # the inbox held no served video before this page: drop this page's
            now_served = set(ids)
            entity.inbox = Pairs(p for p in entity.inbox.pairs() if p[0] not in now_served)
        return _encoder.encode(FeedPage(page, ids, page + 1 if ids else None, flags=self._flags(entity, ids),
                                        feedback_at=entity.feedback_at)), True

    def _count(self, feed: UserFeed, picked: list[tuple[int, int, int]]) -> None:
        """Impressions per source and of the newest videos; the page's sources kept for its likes."""
        impressions, exposure, newest = self.impressions, self.exposure, self.pool.newest
        fresh_from = newest[-1] if len(newest) >= FRESH_WINDOW else 0
        fresh = 0
        self.shown.update(v for v, _, _ in picked)
        for vid, _, source in picked:
            impressions[source] += 1
            if vid >= fresh_from:
                shown = exposure[vid] = exposure.get(vid, 0) + 1
                fresh += 1
                if shown == EXPOSURE_FLOOR and vid in self.pool.under:
                    self.pool.under.remove(vid)  # once per video, in a list of at most 300
        self.new_video_impressions += fresh
        recent = feed.recent if feed.recent is not None else array("q")
        recent.extend(v for v, _, _ in picked)
        src = feed.recent_src + bytes(s for _, _, s in picked)
        if len(recent) > RECENT_KEEP:
            del recent[: len(recent) - RECENT_KEEP]
            src = src[-RECENT_KEEP:]
        feed.recent, feed.recent_src = trimmed(recent), src

    def counters(self) -> dict[str, int]:
        """The online evaluation of the candidate sources: impressions and likes per source (a
        source's like-through rate is their ratio), impressions of the pool's newest videos, and
        pool refresh failures. ``new_videos_exposed`` is the one that is not monotonic: how many of
        the pool's newest videos this shard has shown at least once (it shrinks as they age out)."""
        out = {f"impressions.{name}": n for name, n in zip(SOURCES, self.impressions)}
        out.update((f"likes.{name}", n) for name, n in zip(SOURCES, self.source_likes))
        out["new_video_impressions"] = self.new_video_impressions
        out["new_videos_exposed"] = len(self.exposure)
        out["pool_refresh_errors"] = self.refresh_errors
        out["together_videos"] = len(self.together)
        return out

    def _flags(self, feed: UserFeed, ids: list[int]) -> list[int]:
        """Per id: 1 if the user likes it, 2 if the user follows its author (empty: none of either)."""
        authors, liked, following = self.pool.authors, feed.liked, feed.following
        flags = [(1 if v in liked else 0) | (2 if authors.get(v, 0) in following else 0) for v in ids]
        return flags if any(flags) else []

    def snapshot(self, entity: UserFeed) -> FeedSnapshot:
        c = entity.changes or Changes()
        entity.changes = None
        state = FeedState(entity.key, entity.seq, entity.next_page, entity.inbox.pairs(),
                          entity.profile.encode()) if c.state else None
        return FeedSnapshot(entity.key, state, c.new_pages, c.like_changes, c.follow_changes)

    async def flush(self, snapshots: list[FeedSnapshot]) -> None:
        # Likes and follows strictly before the state row with its applied sequence: a process
        # killed between the two must come back with the sequence *behind* what the rows say, so
        # the redelivered requests find the like already there and change nothing. The other
        # order loses the like from the user's set while its delta was counted, and a second like
        # of the same video later counts again (the scale-out SIGKILL test caught exactly that).
        await asyncio.gather(
            self.likes_repo.apply(c for s in snapshots for c in s.like_changes),
            self.follows_repo.apply(c for s in snapshots for c in s.follow_changes),
        )
        await self.feeds.save(
            states=[s.state for s in snapshots if s.state is not None],
            pages=[(s.key, p, ids) for s in snapshots for p, ids in s.new_pages],
        )

    def size_of(self, entity: UserFeed) -> int:
        # Checked against tracemalloc by bench/actors_memory.py: the object (104), its seq and
        # scan position ints (32 + 28), the arrays as allocated; pending changes are small and
        # short-lived (a flush interval), and the key is in the host's per-key overhead.
        return (
            164 + sys.getsizeof(entity.served) + sys.getsizeof(entity.following) + sys.getsizeof(entity.inbox)
            + sys.getsizeof(entity.liked) + sys.getsizeof(entity.pages) + entity.profile.size()
            + (sys.getsizeof(entity.recent) + sys.getsizeof(entity.recent_src) if entity.recent is not None else 0)
        )


def build_feed(key: int, seq: int, next_page: int, inbox: list[tuple[int, int]], served: set[int],
               pages: dict[int, list[int]], liked: dict[int, int], following: set[int],
               profile: bytes | None = None) -> UserFeed:
    """A UserFeed from its stored state, in the compact forms. A profile never stored (a feed of
    before profiles) is learnt again from the user's likes and follows, which know their authors
    (not their hashtags): one example of 1 each, as the entity learns them."""
    feed = UserFeed(key)
    feed.seq, feed.next_page = seq, next_page
    feed.inbox = Pairs(inbox)
    feed.served = IdSet(served)
    feed.pages = Pages(pages, PAGES_KEEP)
    feed.liked = IdMap(liked)
    feed.following = IdSet(following)
    if profile:
        feed.profile = Profile.decode(profile)
    else:
        for author in feed.liked.authors():
            feed.profile.learn(author, (), 1.0)
        for author in feed.following:
            feed.profile.learn(author, (), 1.0)
    return feed
