"""Captions and hashtags: the one place that says what a valid caption and a hashtag are.

A hashtag is ``#`` followed by Unicode letters, digits or underscores (Python's ``\\w``), at most
:data:`TAG_MAX` characters, lower-cased; a caption keeps its first :data:`MAX_TAGS` distinct ones.
Feeds refer to a tag by :func:`tag_id`, a stable 63-bit hash (Python's ``hash`` of a str differs
between processes), so an interest profile is an array of ints, not of strings.
"""

from __future__ import annotations

import re
from hashlib import blake2b

__all__ = ["CAPTION_MAX", "CAPTION_PATTERN", "TAG_PATTERN", "MAX_TAGS", "TAG_MAX", "parse_hashtags", "tag_id"]

CAPTION_MAX = 300
MAX_TAGS = 10
TAG_MAX = 50

_TAG_IN_TEXT = re.compile(r"#(\w+)")
#: the C0 and C1 control characters but the newline (Unicode category Cc), as ranges that Python
#: and ECMA-262 (the OpenAPI document's readers) read alike
_CONTROL_CHARS = "\\x00-\\x09\\x0b-\\x1f\\x7f-\\x9f"
#: a caption as the API's schema states it
CAPTION_PATTERN = f"^[^{_CONTROL_CHARS}]*$"
#: a tag as the API's schema states it (ASCII in ECMA-262 readers, any Unicode word character here)
TAG_PATTERN = rf"^\w{{1,{TAG_MAX}}}$"


def parse_hashtags(caption: str) -> tuple[str, ...]:
    """The caption's distinct hashtags in order of appearance, lower-cased, at most :data:`MAX_TAGS`."""
    out: list[str] = []
    for m in _TAG_IN_TEXT.finditer(caption):
        tag = m.group(1).lower()
        if len(tag) <= TAG_MAX and tag not in out:
            out.append(tag)
            if len(out) == MAX_TAGS:
                break
    return tuple(out)


def tag_id(tag: str) -> int:
    """A stable 63-bit id of a (lower-cased) hashtag, the same in every process and run."""
    return int.from_bytes(blake2b(tag.encode(), digest_size=8).digest(), "big") >> 1
