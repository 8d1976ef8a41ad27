"""Caption rules and hashtag parsing (clipstream.storage.hashtags)."""

from __future__ import annotations

import subprocess
import sys

from clipstream.storage.hashtags import CAPTION_MAX, MAX_TAGS, caption_problem, is_tag, parse_hashtags, tag_id


class TestCaption:
    def test_plain_and_multiline_captions_are_valid(self) -> None:
        assert caption_problem("") is None
        assert caption_problem("a day at the sea 🌊\nsecond line") is None
        assert caption_problem("x" * CAPTION_MAX) is None

    def test_too_long_or_control_characters_are_refused_by_name(self) -> None:
        assert "301 characters" in (caption_problem("x" * 301) or "")
        assert "U+0000" in (caption_problem("a\x00b") or "")
        assert "U+001B" in (caption_problem("\x1b[31mred") or "")


class TestHashtags:
    def test_parsed_lower_cased_distinct_in_order(self) -> None:
        assert parse_hashtags("#Cats are #cool, #cats! #Ünïcode_1 #日本") == ("cats", "cool", "ünïcode_1", "日本")

    def test_not_tags(self) -> None:
        assert parse_hashtags("no tags # here, email a#b is one") == ("b",)
        assert parse_hashtags("#" + "x" * 51) == ()

    def test_at_most_ten_kept(self) -> None:
        caption = " ".join(f"#t{i}" for i in range(15))
        assert parse_hashtags(caption) == tuple(f"t{i}" for i in range(MAX_TAGS))

    def test_is_tag(self) -> None:
        assert is_tag("cats") and is_tag("Über_1") and is_tag("x" * 50)
        assert not is_tag("") and not is_tag("two words") and not is_tag("#cats") and not is_tag("x" * 51)

    def test_tag_id_is_stable_across_processes(self) -> None:
        code = "from clipstream.storage.hashtags import tag_id; print(tag_id('cats'))"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        assert int(other.stdout) == tag_id("cats")
        assert 0 < tag_id("cats") < 2**63 and tag_id("cats") != tag_id("dogs")
