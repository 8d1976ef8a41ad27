"""A viewer's interest profile: weights over hashtags and authors, small enough for every feed.

The feed entity teaches it by :meth:`Profile.learn`: an online logistic regression of "this viewer
likes this video" on the video's hashtags and author, one stochastic gradient step per example
(a like is a 1, a view that was not liked a 0, or :data:`WATCH_Y` if watched to the end; an
unlike a 0), with every weight shrunk by :data:`SHRINK` per step so an old taste fades within a
few pages of a new one. It replaced decayed sums of signals (2026-12-04; until 2026-12-07 they
still rebuilt a profile never stored, so two update rules met in one model): a liked video's every
hashtag gained the same, so the partner hashtags of a liked creator's niche rose with the viewer's own and, in the taste replay,
only 1.2 of a viewer's 3 true hashtags were in the profile's top 3 by page 10. The regression
explains a like by the weights it already has (a hashtag that already predicts it gains little
more) and a skipped video of the partner hashtag alone pushes that one down (BENCHMARKS.md,
relevance session 7). The same update is what Monolith-style online training does per example,
here within the entity, so the next page reflects it.

Bounded: at most :data:`TOP_K` hashtags and :data:`TOP_K` authors; a new key that finds the table
full replaces the weakest entry (by magnitude) if it is stronger, so negative evidence (skips) is
kept like positive. Ids are unboxed in ``array("q")`` with ``array("f")`` weights: ~1.2 KB for
a full profile, where two dicts of floats took ~4 KB. Hashtags are referred to by
:func:`clipstream.storage.hashtags.tag_id`.
"""

from __future__ import annotations

import math
import sys
from array import array
from typing import Iterable, Mapping

import msgspec

__all__ = ["FULL_WATCH", "LR", "SHRINK", "SKIP", "TOP_K", "WATCH_Y", "Profile", "watch_signal"]

TOP_K = 32
#: what :func:`watch_signal` says of a view watched to the end, and of a quick skip (the entity
#: learns a full watch as :data:`WATCH_Y`, any other view not liked as a 0)
FULL_WATCH = 0.5
SKIP = -0.6
#: weights are kept in [-CAP, CAP] so one creator liked a hundred times does not drown the rest
CAP = 8.0
#: the regression's step size, the shrink of every weight per step, its starting bias (a like rate
#: of 12 %) and the target of a view watched to the end without a like. Measured in the taste
#: replay (300 users, pages 6-20, see BENCHMARKS.md): LR 0.5 with SHRINK 0.99 made 0.262 but
#: recovered from a taste shift in 6 pages; 0.97 made 0.255 in 4.
LR = 0.5
SHRINK = 0.97
BIAS0 = -2.0
WATCH_Y = 0.3

_FLOAT = array("f").itemsize


def watch_signal(watched_ms: int, duration_ms: int) -> float:
    """What a view says: a full watch is for the video, a quick skip against it, the rest nothing."""
    if duration_ms <= 0:
        return 0.0
    if watched_ms >= 0.9 * duration_ms:
        return FULL_WATCH
    if watched_ms < min(2000, 0.2 * duration_ms):
        return SKIP
    return 0.0


class Profile(msgspec.Struct, gc=False):
    """Regression weights over hashtags and authors (unboxed, bounded); msgpack-encoded when stored."""

    tags: array = msgspec.field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    tag_w: array = msgspec.field(default_factory=lambda: array("f"))  # type: ignore[type-arg]
    authors: array = msgspec.field(default_factory=lambda: array("q"))  # type: ignore[type-arg]
    author_w: array = msgspec.field(default_factory=lambda: array("f"))  # type: ignore[type-arg]
    bias: float = BIAS0

    def learn(self, author: int, tags: Iterable[int], y: float) -> None:
        """One example: the viewer's answer ``y`` in [0, 1] to a video of ``author`` with ``tags``
        (1 a like, 0 a video seen and not liked); a step of logistic regression, after shrinking."""
        tags = list(tags)
        for w in (self.tag_w, self.author_w):
            for i in range(len(w)):
                w[i] *= SHRINK
        z = self.bias + sum(_get(self.tags, self.tag_w, t) for t in tags) + _get(self.authors, self.author_w, author)
        g = LR * (y - 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))))
        if g == 0.0:
            return
        _add(self.authors, self.author_w, author, g)
        for t in tags:
            _add(self.tags, self.tag_w, t, g)
        self.bias += 0.1 * g

    def viewed(self, author: int, tags: Iterable[int], watched_ms: int, duration_ms: int) -> None:
        """A view of a video the viewer did not like, as an example: a 0, or :data:`WATCH_Y` if it
        was watched to the end (a liked video's example is its like)."""
        self.learn(author, tags, WATCH_Y if watch_signal(watched_ms, duration_ms) == FULL_WATCH else 0.0)

    @classmethod
    def planted(cls, tags: Mapping[int, float], authors: Mapping[int, float] | None = None) -> "Profile":
        """A profile holding these weights as they are (a test's or a bench's known taste)."""
        return cls(array("q", tags), array("f", tags.values()), array("q", authors or {}),
                   array("f", (authors or {}).values()))

    def tag_weights(self) -> dict[int, float]:
        return dict(zip(self.tags, self.tag_w))

    def author_weights(self) -> dict[int, float]:
        return dict(zip(self.authors, self.author_w))

    def top_tags(self, n: int) -> list[int]:
        """The ``n`` hashtags with the largest positive weight, strongest first."""
        return [t for w, t in sorted(zip(self.tag_w, self.tags), reverse=True)[:n] if w > 0]

    def top_authors(self, n: int) -> list[int]:
        """The ``n`` authors with the largest positive weight, strongest first."""
        return [a for w, a in sorted(zip(self.author_w, self.authors), reverse=True)[:n] if w > 0]

    def __bool__(self) -> bool:
        return bool(self.tags) or bool(self.authors)

    def encode(self) -> bytes:
        return _encoder.encode((list(self.tags), list(self.tag_w), list(self.authors), list(self.author_w),
                                self.bias))

    @classmethod
    def decode(cls, raw: bytes | None) -> "Profile":
        """A stored profile; an empty one for ``None`` (never stored)."""
        if not raw:
            return cls()
        tags, tag_w, authors, author_w, *bias = _decoder.decode(raw)  # stored before the bias: 4 items
        return cls(array("q", tags), array("f", tag_w), array("q", authors), array("f", author_w),
                   float(bias[0]) if bias else BIAS0)

    def size(self) -> int:
        """Bytes held, for the shard's memory accounting (the object and its four arrays)."""
        return (sys.getsizeof(self) + sys.getsizeof(self.tags) + sys.getsizeof(self.tag_w)
                + sys.getsizeof(self.authors) + sys.getsizeof(self.author_w))


def _get(keys: array, weights: array, key: int) -> float:  # type: ignore[type-arg]
    try:
        return weights[keys.index(key)]
    except ValueError:
        return 0.0


def _add(keys: array, weights: array, key: int, weight: float) -> None:  # type: ignore[type-arg]
    try:
        i = keys.index(key)
    except ValueError:
        if len(keys) < TOP_K:
            keys.append(key)
            weights.append(max(-CAP, min(CAP, weight)))
            return
        weakest = min(range(len(weights)), key=lambda j: abs(weights[j]))
        if abs(weights[weakest]) < abs(weight):
            keys[weakest], weights[weakest] = key, max(-CAP, min(CAP, weight))
        return
    weights[i] = max(-CAP, min(CAP, weights[i] + weight))


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(list)
