"""Liked together: item-to-item neighbours learnt from the like stream, incrementally.

When a user likes video ``v``, every video the same user liked among the ones they were served just
before (their last two pages, :data:`~clipstream.actors.entities.feed.RECENT_KEEP` ids, which the
feed entity keeps anyway) becomes a neighbour of ``v`` and ``v`` of it: "people who liked this
also liked". A page then takes the neighbours of the viewer's own recent likes as candidates. It
is the item-to-item neighbourhood of production recommenders (Gorse's item-to-item recommender
with its "users" similarity: items alike when the same users liked them), from likes close in
time (a session), kept here per feed shard, in memory, from the likes that shard applies:

* it reacts within one like (a like's neighbours are candidates of the next page), which item
  vectors retrained by a worker would not: the feed's whole point is the next page;
* it needs no second store and no second pass over the like stream; a shard sees its users' likes
  (half of them on a node of two feed shards), enough to find the neighbours of liked videos;
* what it forgets on a restart comes back with the next likes (like the shard's exposure counts).

Weights are co-like counts over ``sqrt`` of each video's like count in the structure (cosine of
the binary user-video matrix, restricted to the shard's users), so a video everyone likes is not
everyone's neighbour. Bounded: at most :data:`NEIGHBOURS` neighbours a video (the weakest dropped
when a list doubles) and only videos of the shard's candidate pool (:meth:`keep_only` at each pool
refresh).
"""

from __future__ import annotations

import math
from typing import Container, Iterable

__all__ = ["NEIGHBOURS", "LikedTogether"]

#: neighbours kept per video (a list is cut back to this when it reaches twice as many)
NEIGHBOURS = 24


class LikedTogether:
    """Co-like counts between the videos of a shard's pool, from its users' likes."""

    __slots__ = ("links", "likes", "pairs")

    def __init__(self) -> None:
        #: video -> {neighbour: co-like count}
        self.links: dict[int, dict[int, int]] = {}
        #: video -> likes seen of it (the norm of its column)
        self.likes: dict[int, int] = {}
        #: co-like pairs counted since the start (the online evaluation's volume)
        self.pairs = 0

    def observe(self, video: int, liked_before: Iterable[int]) -> None:
        """A user liked ``video`` after liking ``liked_before`` (their other recent likes)."""
        likes = self.likes
        likes[video] = likes.get(video, 0) + 1
        for other in liked_before:
            if other == video:
                continue
            self._link(video, other)
            self._link(other, video)
            self.pairs += 1

    def unobserve(self, video: int) -> None:
        """An unlike: the video's norm goes down (its links stay; they were true when made)."""
        n = self.likes.get(video, 0)
        if n > 1:
            self.likes[video] = n - 1
        else:
            self.likes.pop(video, None)

    def _link(self, a: int, b: int) -> None:
        row = self.links.get(a)
        if row is None:
            self.links[a] = {b: 1}
            return
        row[b] = row.get(b, 0) + 1
        if len(row) >= 2 * NEIGHBOURS:
            kept = sorted(row.items(), key=lambda kv: kv[1], reverse=True)[:NEIGHBOURS]
            self.links[a] = dict(kept)

    def neighbours(self, seeds: Iterable[int], n: int, skip: Container[int] = ()) -> list[tuple[int, float]]:
        """The ``n`` strongest neighbours of ``seeds`` (summed over the seeds), not in ``skip``,
        as (video, weight in (0, 1]) strongest first."""
        scores: dict[int, float] = {}
        likes, links = self.likes, self.links
        for seed in seeds:
            row = links.get(seed)
            if not row:
                continue
            norm_seed = math.sqrt(likes.get(seed, 1) or 1)
            for other, count in row.items():
                if other in skip:
                    continue
                scores[other] = scores.get(other, 0.0) + count / (norm_seed * math.sqrt(likes.get(other, 1) or 1))
        if not scores:
            return []
        best = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)[:n]
        top = best[0][1]
        return [(v, w / top) for v, w in best]

    def keep_only(self, videos: Container[int]) -> None:
        """Forget the videos that left the pool, and links to them."""
        self.links = {v: {o: c for o, c in row.items() if o in videos} for v, row in self.links.items() if v in videos}
        self.likes = {v: n for v, n in self.likes.items() if v in videos}

    def __len__(self) -> int:
        return len(self.links)
