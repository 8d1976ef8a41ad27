"""The watch scenario's arithmetic and its rows (the browser runs are in `clipstream bench --scenarios watch`)."""

from __future__ import annotations

from clipstream.bench.results import rows_of
from clipstream.bench.runner import ALL_SCENARIOS
from clipstream.bench.watch import LINKS, summarize


def card(ms: float | None, stalls: int = 0) -> dict:
    return {"first_frame_ms": ms, "stalls": stalls, "stall_ms": 60 * stalls}


def test_percentiles_failures_and_stalls() -> None:
    s = summarize([card(float(ms)) for ms in range(10, 210, 10)] + [card(None), card(30.0, stalls=2)])
    assert s["cards"] == 22 and s["failures"] == 1
    assert s["first_frame_p50_ms"] == 100.0 and s["first_frame_p95_ms"] == 190.0 and s["first_frame_max_ms"] == 200.0
    assert s["stalls"] == 2 and s["stall_ms"] == 120 and s["cards_with_stalls"] == 1


def test_no_frame_at_all_is_all_failures() -> None:
    s = summarize([card(None), card(None)])
    assert s["failures"] == 2 and s["first_frame_p95_ms"] is None


def test_the_3g_preloading_run_is_graded_against_500_ms() -> None:
    run = {"link": "3g", "preload": 2, "ahead": "metadata", **summarize([card(450.0), card(480.0)]), "sign_in_to_first_card_ms": 250.0,
           "first_page_request_ms": 30.0, "signed_in_to_first_card_ms": 250.0}
    rows = rows_of({"watch": {"runs": [run, {**run, "ahead": "auto"}, {**run, "preload": 0}]}})
    graded = [r for r in rows if r.target.startswith("p95")]
    assert len(graded) == 1 and graded[0].verdict == "met"
    first = [r for r in rows if r.target == "< 200 ms"]
    assert len(first) == 1 and first[0].verdict == "NOT met"


def test_a_page_that_came_with_the_login_says_so() -> None:
    run = {"link": "3g", "preload": 2, "ahead": "metadata", **summarize([card(50.0)]), "sign_in_to_first_card_ms": 274.0,
           "login_ms": 266.3, "first_page_with_login": True, "first_page_request_ms": None,
           "signed_in_to_first_card_ms": 7.7}
    [first] = [r for r in rows_of({"watch": {"runs": [run]}}) if r.target == "< 200 ms"]
    assert first.value == "7.7 ms (274.0; page in the login's 266.3 ms)" and first.verdict == "met"


def test_it_is_a_scenario_with_the_issues_links() -> None:
    assert "watch" in ALL_SCENARIOS
    assert LINKS["4g"] == (9_000_000, 40) and LINKS["3g"] == (1_600_000, 150)


def test_a_bare_bench_run_leaves_the_browser_scenario_out() -> None:
    from clipstream.bench.runner import DEFAULT_SCENARIOS

    assert "watch" not in DEFAULT_SCENARIOS and set(DEFAULT_SCENARIOS) == set(ALL_SCENARIOS) - {"watch"}


def test_cards_on_the_low_rendition_are_counted() -> None:
    s = summarize([{**card(40.0), "rendition": "low"}, {**card(50.0), "rendition": "main"}, card(60.0)])
    assert s["cards_low"] == 1


def test_a_main_only_run_is_shown_but_not_graded() -> None:
    run = {"link": "3g", "preload": 2, "ahead": "metadata", **summarize([card(45.0)]), "sign_in_to_first_card_ms": 250.0,
           "first_page_request_ms": 30.0, "signed_in_to_first_card_ms": 250.0}
    rows = rows_of({"watch": {"runs": [{**run, "page": "main"}, {**run, "page": "abr"}]}})
    assert [r.target.startswith("p95") for r in rows if "p50" in r.figure] == [False, True]
    assert "page before renditions" in rows[0].figure and rows[0].value.endswith("· 0 low")
    assert len([r for r in rows if r.target == "< 200 ms"]) == 1
