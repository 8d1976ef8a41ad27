"""Pure parts of the bench suite: the wrk result line, the rendered Lua, the figures table."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clipstream.bench.results import Row, format_table, result_path, rows_of
from clipstream.bench.wrk import MARKER, WrkError, parse_output, render_script


def _line(**over) -> str:
    data = {
        "requests": 3000, "duration_us": 2_000_000, "bytes": 1, "errors": {"connect": 0, "read": 1, "write": 0,
        "status": 4, "timeout": 2}, "latency_us": {"p50": 1500, "p90": 4000, "p99": 9999, "max": 20000},
        "sent": 3010, "ok": 2996, "bad": 4, "endpoints": {"feed": {"n": 2000, "p50_us": 1000, "p99_us": 8000}},
    }  # fmt: skip
    data.update(over)
    return MARKER + json.dumps(data)


class TestParseOutput:
    def test_figures_from_the_done_line(self) -> None:
        r = parse_output("Running 2s test\n" + _line() + "\nRequests/sec: 1500\n")
        assert r.rps == 1500
        assert (r.p50_ms, r.p99_ms, r.max_ms) == (1.5, 10.0, 20.0)
        assert r.socket_errors == 3  # read + timeout; status errors are counted as non-2xx
        assert r.endpoint_rps("feed") == 1000
        assert r.as_dict()["endpoints"]["feed"] == {"n": 2000, "p50_ms": 1.0, "p99_ms": 8.0, "rps": 1000.0}

    def test_no_result_line_is_an_error(self) -> None:
        with pytest.raises(WrkError, match="no result"):
            parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


class TestRenderScript:
    @pytest.mark.parametrize("name", ["feed", "like", "mixed"])
    def test_common_part_comes_first_then_the_scenario(self, name: str) -> None:
        script = render_script(name)
        assert script.index("function done(") < script.index("function request()")
        assert script.count("function response(") == 1

    def test_unknown_scenario(self) -> None:
        with pytest.raises(FileNotFoundError):
            render_script("nope")


RESULTS = {
    "ref_ceiling": {"rps": 10000.0, "p50_ms": 3.0, "p99_ms": 9.0},
    "ref_cache": {"rps": 5000.0, "p50_ms": 6.0, "p99_ms": 20.0},
    "feed": {"rps": 2500.0, "p50_ms": 20.0, "p99_ms": 80.0, "non_2xx": 0, "socket_errors": 0},
    "like": {"rps": 3100.0, "p50_ms": 10.0, "p99_ms": 40.0, "non_2xx": 0, "socket_errors": 0},
    "like_counts": {"sent": 10, "acknowledged": 9, "stored_distinct_likes": 10, "stats_sum": 10, "exact": True},
    "growth": {"points": {"10k": {"rps": 1.0, "p50_ms": 10.0, "p99_ms": 50.0},
                          "1M": {"rps": 1.0, "p50_ms": 11.0, "p99_ms": 70.0}}, "p50_spread": 0.1, "p99_spread": 0.4},
    "actors": {"skipped": "bench/actors_bench.py not present"},
}


class TestTable:
    def test_ratios_and_verdicts(self) -> None:
        rows = {(r.figure, r.value, r.verdict) for r in rows_of(RESULTS)}
        assert ("× ref (b) req/s", "0.5", "NOT met") in rows
        assert ("× ref (a) req/s", "0.25", "") in rows
        assert ("p99", "80.0 ms", "NOT met") in rows
        assert ("req/s", "3,100", "met") in rows
        assert ("p50 · p99 spread (max/min − 1)", "10% · 40%", "NOT met") in rows

    def test_missing_scenarios_leave_no_rows(self) -> None:
        assert rows_of({}) == []

    def test_text_columns_align_and_markdown_has_a_rule(self) -> None:
        rows = [Row("a", "b", "c"), Row("longer scenario", "f", "v", "t", "met")]
        text = format_table(rows).splitlines()
        assert text[0].index("figure") == text[2].index("f ")
        md = format_table(rows, markdown=True).splitlines()
        assert md[1] == "|---|---|---|---|---|" and md[3].startswith("| longer scenario | f | v | t | met |")

    def test_result_file_is_named_by_utc_time(self) -> None:
        when = datetime(2026, 11, 23, 23, 5, 7, tzinfo=timezone.utc)
        assert result_path(when, Path("/r")) == Path("/r/2026-11-23T23-05-07Z.json")


def test_actor_figures_show_value_unit_target_and_verdict() -> None:
    rows = rows_of({"actors": {"inject_events_per_s": {"value": 17163.8, "unit": "events/s", "target": 20000.0,
                                                      "met": False, "detail": {}}}})
    assert rows == [Row("actor scenarios (bench/actors_bench.py)", "inject_events_per_s", "17,163.8 events/s",
                        "20,000.0 events/s", "NOT met")]
