"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from clipstream.actors.entities import feed as feed_module


@pytest.fixture
def no_onboarding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rank a profile as it is: a new feed's onboarding pages and re-exploration (tested on their
    own in test_entities.py, which sets them back per test) are off."""
    monkeypatch.setattr(feed_module, "ONBOARD_PAGES", 0)
    monkeypatch.setattr(feed_module, "REEXPLORE_SLOTS", 0)
