"""Caption rules and hashtag parsing (clipstream.storage.hashtags)."""

from __future__ import annotations

import subprocess
import sys

import re

import msgspec
import pytest

from clipstream.http.schemas import Caption
from clipstream.storage.hashtags import CAPTION_MAX, MAX_TAGS, TAG_PATTERN, parse_hashtags, tag_id


class _Body(msgspec.Struct):
    c: Caption


class TestCaptionRule:
    """The pattern the API's schema states and msgspec checks."""

    @pytest.mark.parametrize("caption", ["", "a day at the sea 🌊\nsecond line", "soft\u00adhyphen", "x" * CAPTION_MAX])
    def test_valid(self, caption: str) -> None:
        msgspec.json.decode(msgspec.json.encode({"c": caption}), type=_Body)

    @pytest.mark.parametrize("caption", ["x" * (CAPTION_MAX + 1), "a\x00b", "\x1b[31mred", "tab\there", "nel\x85"])
    def test_refused_naming_the_field(self, caption: str) -> None:
        with pytest.raises(msgspec.ValidationError, match=r"\$\.c"):
            msgspec.json.decode(msgspec.json.encode({"c": caption}), type=_Body)


class TestHashtags:
    def test_parsed_lower_cased_distinct_in_order(self) -> None:
        assert parse_hashtags("#Cats are #cool, #cats! #Ünïcode_1 #日本") == ("cats", "cool", "ünïcode_1", "日本")

    def test_not_tags(self) -> None:
        assert parse_hashtags("no tags # here, email a#b is one") == ("b",)
        assert parse_hashtags("#" + "x" * 51) == ()

    def test_at_most_ten_kept(self) -> None:
        caption = " ".join(f"#t{i}" for i in range(15))
        assert parse_hashtags(caption) == tuple(f"t{i}" for i in range(MAX_TAGS))

    def test_tag_pattern(self) -> None:
        def is_tag(tag: str) -> bool:
            return re.match(TAG_PATTERN, tag) is not None

        assert is_tag("cats") and is_tag("Über_1") and is_tag("x" * 50)
        assert not is_tag("") and not is_tag("two words") and not is_tag("#cats") and not is_tag("x" * 51)

    def test_tag_id_is_stable_across_processes(self) -> None:
        code = "from clipstream.storage.hashtags import tag_id; print(tag_id('cats'))"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert int(other.stdout) == tag_id("cats")
        assert 0 < tag_id("cats") < 2**63 and tag_id("cats") != tag_id("dogs")
