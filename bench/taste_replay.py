"""The taste world replayed through the feed's own ranking, offline: seconds instead of minutes.

``python -m clipstream.bench.taste_replay --users 100 --set TAG_CAP=5 --set SHRINK=0.98`` builds the
taste scenario's catalogue and users (:mod:`clipstream.bench.taste`), a shard candidate pool as
the running system builds it (the 5,000 newest and the 5,000 most liked), and serves each user
20 pages with :func:`clipstream.actors.entities.feed.rank`, applying each like and watch to the
user's profile as the entity does. It is for trying a ranking change before a real run: it has no
bus, no flush, no second shard and no HTTP, so only ``clipstream bench --scenarios taste`` gives
the figures of BENCHMARKS.md (the two agreed within 0.01 on pages 6-20, 2026-12-03).
``--know`` starts every profile with the user's true hashtags: what the ranking makes of a
profile that has nothing left to learn. ``--true-profile N`` goes further: before every page the
profile is replaced by the user's N strongest true hashtags of the moment (``--true-creators``:
and their favourite creators), an upper bound of what learning can bring to this ranking.

Besides the relevance figures it reports how the profile learns: the share of a user's true
hashtags among the profile's top 3 by page, and how often the true hashtags had been shown at all
by the shift (pre-shift tastes, pages 1-10): a hashtag never shown cannot be learnt, whatever
the update rule.
"""

from __future__ import annotations

import argparse
from array import array
import random
import time
from typing import Any

from clipstream.actors.entities import feed as F
from clipstream.actors.entities import profile as P
from clipstream.actors.entities.together import LikedTogether
from clipstream.bench import taste as T
from clipstream.storage.hashtags import tag_id
from clipstream.storage.ids import EPOCH_MS


def _true_profile(taste: T.Taste, tag_ids: list[int], creators: list[int], n: int, with_creators: bool) -> P.Profile:
    """A profile holding the ``n`` strongest hashtags of ``taste`` (and its creators), at the scale
    of p_like's match (1.5 a unit of taste weight), tripled so that it rules the page."""
    strongest = sorted(taste.tags.items(), key=lambda tw: -tw[1])[:n]
    return P.Profile.planted({tag_ids[t]: 4.5 * w for t, w in strongest},
                             {creators[c]: 1.2 for c in sorted(taste.creators)} if with_creators else None)


def replay(shape: T.Shape, users: int, know: bool = False, shards: int = 2, true_profile: int = 0,
           true_creators: bool = False, seed: int = 5, tastes_seed: int = 2) -> dict[str, Any]:
    world = T.make_world(shape)
    before, after = T.make_tastes(world, tastes_seed)
    n, now = shape.videos, int(time.time() * 1000)
    spacing = 2 * 86_400_000 // n
    vids = [((now - 60_000 - j * spacing - EPOCH_MS) << 22) | j for j in range(n)]
    creators = [10**12 + c for c in range(shape.creators)]
    index = {v: j for j, v in enumerate(vids)}
    tag_ids = [tag_id(name) for name in world.tag_names]
    popular = sorted(range(n), key=lambda j: world.likes[j], reverse=True)[:5000]
    in_pool = sorted(set(range(min(5000, n))) | set(popular))
    pool = F.CandidatePool([(vids[j], creators[world.author[j]], world.likes[j]) for j in in_pool], now_ms=now,
                           version=1, tags={vids[j]: tuple(tag_ids[t] for t in world.tags[j]) for j in in_pool})
    newest = set(pool.newest)
    rng = random.Random(seed)
    feeds = [F.UserFeed(key=5 * 10**12 + u) for u in range(users)]
    served = [T.Served() for _ in range(users)]
    rngs = [random.Random(rng.random()) for _ in range(users)]
    # Each shard has its own exposure counts and set of videos it has shown anyone; a user's pages
    # come from one shard. Users take turns page by page, as the running system's users swipe at once.
    exposures: list[dict[int, int]] = [{} for _ in range(shards)]
    shown: list[set[int]] = [set() for _ in range(shards)]
    together = [LikedTogether() for _ in range(shards)]
    rank_s = 0.0
    #: per page, true hashtags in the profile's top 3 (summed over users); per user, impressions of
    #: each pre-shift hashtag in pages 1-10
    recall = [0] * shape.pages
    shown_before = [dict.fromkeys(b.tags, 0) for b in before[:users]]
    if know:
        for u, feed in enumerate(feeds):
            feed.profile = _true_profile(before[u], tag_ids, creators, 3, False)
    for p in range(shape.pages):
        for u, (feed, s, urng) in enumerate(zip(feeds, served, rngs)):
            taste = after[u] if after[u] is not None and p >= T.SHIFT_PAGE else before[u]
            exposure = exposures[u % shards]
            if true_profile:
                feed.profile = _true_profile(taste, tag_ids, creators, true_profile, true_creators)
            recall[p] += len({tag_ids[t] for t in taste.tags} & set(feed.profile.top_tags(3)))
            started = time.thread_time()
            ids = [v for v, _, _ in F.rank(feed, pool, T.PAGE_SIZE, exposure, shown[u % shards], together[u % shards])]
            rank_s += time.thread_time() - started
            shown[u % shards].update(ids)
            for v in ids:
                if v in newest:
                    exposure[v] = exposure.get(v, 0) + 1
            feed.served.update(ids)
            feed.next_page += 1
            recent = feed.recent if feed.recent is not None else array("q")
            recent.extend(ids)
            del recent[: max(0, len(recent) - F.RECENT_KEEP)]
            feed.recent = recent
            page = [index[v] for v in ids]
            s.add(world, taste, page)
            if p < T.SHIFT_PAGE:
                counts = shown_before[u]
                for j in page:
                    for t in world.tags[j]:
                        if t in counts:
                            counts[t] += 1
            liked = 0
            for v, j in zip(ids, page):
                like, watched = T.react(urng, world, taste, j)
                tags, author = [tag_ids[t] for t in world.tags[j]], creators[world.author[j]]
                if like:  # the entity applies the like, then the view (the order the client sends them)
                    liked += 1
                    feed.liked.set(v, author)
                    together[u % shards].observe(v, [w for w in recent if w in feed.liked and w != v])
                    feed.profile.learn(author, tags, 1.0)
                else:  # as FeedKind.handle takes a Watched
                    feed.profile.viewed(author, tags, watched, T.DURATION_MS)
            s.likes.append(liked)
    base = T.baselines(world, before[:users], after[:users], shape.pages)
    rep = T.report(world, before[:users], after[:users], served, base, shape.pages)
    rep["rank_us_per_page"] = round(1e6 * rank_s / max(1, users * shape.pages))
    counts = [n for c in shown_before for n in c.values()]
    rep["learning"] = {
        "true_hashtags_in_top3_by_page": [round(r / users, 2) for r in recall],
        "true_hashtags_shown_by_the_shift": {
            "never": round(sum(n == 0 for n in counts) / len(counts), 3),
            "1-2": round(sum(0 < n < 3 for n in counts) / len(counts), 3),
            "3+": round(sum(n >= 3 for n in counts) / len(counts), 3),
        },
    }
    return rep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--know", action="store_true", help="profiles start with the users' true hashtags")
    parser.add_argument("--true-profile", type=int, default=0, metavar="N",
                        help="before each page, the profile is the user's N strongest true hashtags (an upper bound)")
    parser.add_argument("--true-creators", action="store_true", help="with --true-profile: and the favourite creators")
    parser.add_argument("--shards", type=int, default=2, help="feed shards the users are split over (a node runs 2)")
    parser.add_argument("--topics", type=int, default=T.Shape().topics,
                        help="hashtag topics of the world (0: independent tastes, the world before topics)")
    parser.add_argument("--seed", type=int, default=5, help="seed of the users' reactions")
    parser.add_argument("--tastes-seed", type=int, default=2, help="seed of the users' hidden tastes (make_tastes)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="override a constant of actors/entities/feed.py or profile.py for this replay")
    args = parser.parse_args()
    for item in args.set:
        name, value = item.split("=", 1)
        module = P if hasattr(P, name) else F
        if not hasattr(module, name):
            parser.error(f"no constant {name} in feed.py or profile.py")
        setattr(module, name, float(value) if "." in value else int(value))
    rep = replay(T.Shape(topics=args.topics), args.users, args.know, args.shards, args.true_profile,
                 args.true_creators, args.seed, args.tastes_seed)
    late, shift = rep["pages_6_20"], rep["shift"]
    print(f"pages 6-20: system {late['system']:.3f}, most liked {late['most_liked']:.3f}, oracle {late['oracle']:.3f}, "
          f"lift {late['lift_over_most_liked']}x, {late['share_of_oracle']:.1%} of the oracle; recovery "
          f"{shift['recovery_pages']} pages; coverage {rep['coverage']['share']:.1%} (of {args.users} users); "
          f"rank() {rep['rank_us_per_page']} us a page")
    print("by page:", rep["expected_like_rate_by_page"]["system"])
    print(f"shift: pre (pages 6-10) {shift['pre_shift_rate_pages_6_10']}, post by page {shift['post_shift_by_page']}")
    learning = rep["learning"]
    print("true hashtags in the profile's top 3, by page:", learning["true_hashtags_in_top3_by_page"])
    print("true hashtags shown by the shift (pages 1-10):", ", ".join(
        f"{k} {v:.1%}" for k, v in learning["true_hashtags_shown_by_the_shift"].items()))


if __name__ == "__main__":
    main()
