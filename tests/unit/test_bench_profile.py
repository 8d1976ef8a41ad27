"""The py-spy summary of `clipstream bench --profile` (pure: parses py-spy's raw collapsed stacks)."""

from __future__ import annotations

from clipstream.bench.profile import summarize

RAW = """\
<module> (clipstream:6);serve (main/http/server.py:73);feed (main/http/feed.py:30);select (selectors.py:468) 6
<module> (clipstream:6);refresh (main/actors/entities/feed.py:169);base_score (main/actors/entities/feed.py:90) 3
<module> (clipstream:6);refresh (main/actors/entities/feed.py:169);base_score (main/actors/entities/feed.py:90) 1
garbage line
"""


def test_self_and_inclusive_shares() -> None:
    s = summarize(RAW)
    assert s["samples"] == 10
    assert s["self_pct"][0] == ("select (selectors.py:468)", 60.0)
    assert ("base_score (main/actors/entities/feed.py:90)", 40.0) in s["self_pct"]
    inclusive = dict(s["clipstream_inclusive_pct"])
    assert inclusive["<module> (clipstream:6)"] == 100.0
    assert inclusive["refresh (main/actors/entities/feed.py:169)"] == 40.0
    assert "select (selectors.py:468)" not in inclusive  # not the project's code


def test_empty_profile() -> None:
    assert summarize("") == {"samples": 0, "self_pct": [], "clipstream_inclusive_pct": []}
