"""The open-loop bench's arithmetic: latency from the intended send time, pairs, stage deltas."""

from __future__ import annotations

from clipstream.bench.openloop import (feed_targets, label_of, like_pair, like_targets, mixed_targets, stage_figures,
                                       summarize)


def row(ts_ns: int, code: int, latency_ns: int, seq: int, url: str = "http://h/v1/feed?limit=10",
        method: str = "GET", error: str = "") -> list[str]:
    return [str(ts_ns), str(code), str(latency_ns), "0", "0", error, "", "", str(seq), method, url, ""]


class TestSummarize:
    def test_a_late_send_counts_from_its_intended_time(self) -> None:
        # 100/s: request i is due at i * 10 ms. Request 2 was sent 50 ms late and took 1 ms.
        ms = 1_000_000
        rows = [row(0, 200, 1 * ms, 0), row(10 * ms, 200, 1 * ms, 1), row(70 * ms, 200, 1 * ms, 2),
                row(30 * ms, 500, 2 * ms, 3)]
        r = summarize(iter(rows), rate=100.0, seconds=0.04)
        assert r.overall["max_ms"] == 51.0  # 50 ms late + 1 ms
        assert r.send_lag_max_ms == 50.0
        assert (r.ok, r.bad, r.sent) == (3, 1, 4)

    def test_endpoints_are_labelled_by_url(self) -> None:
        rows = [row(0, 200, 1000, 0), row(1000, 200, 1000, 1, "http://h/v1/videos/5/like", "POST")]
        r = summarize(iter(rows), rate=1000.0, seconds=0.002)
        assert set(r.endpoints) == {"feed", "like"}
        assert label_of("POST", "http://h/v1/videos/upload-url") == "upload_url"

    def test_transport_errors_are_not_statuses(self) -> None:
        r = summarize(iter([row(0, 0, 1000, 0, error="connection refused")]), rate=10.0, seconds=0.1)
        assert (r.errors, r.bad, r.ok) == (1, 0, 0)


def test_like_targets_never_repeat_a_pair_across_ranges() -> None:
    tokens, videos = [f"t{i}" for i in range(16)], [str(v) for v in range(50)]
    first = like_targets(tokens, videos, 0, 100.0, 2.0)
    second = like_targets(tokens, videos, len(first), 100.0, 2.0)
    pairs = [(t.token, t.path) for t in first + second]
    assert len(pairs) == len(set(pairs)) and len(pairs) <= 16 * 50
    assert like_pair(17, 16, 50) == (1, (1 + 7) % 50)


def test_targets_cover_the_run_and_mix_in_proportion() -> None:
    assert len(feed_targets(["a", "b"], 100.0, 10.0)) >= 1000
    mixed = mixed_targets(["a"], ["1", "2"], 1011.0, 10.0)
    labels = [t.label for t in mixed[:10110]]
    assert labels.count("upload_url") == 10 and labels.count("like") == 100
    assert '"body"' in mixed[1].as_json("http://h") and '"body"' not in mixed[20].as_json("http://h")


def test_stage_figures_are_deltas_with_bucket_bounds() -> None:
    inf = float("inf")
    before = {"feed shard lock_wait": {0.001: 100.0, 0.05: 100.0, 0.1: 100.0, inf: 100.0}}
    after = {"feed shard lock_wait": {0.001: 1090.0, 0.05: 1099.0, 0.1: 1100.0, inf: 1100.0},
             "api gc": {0.001: 0.0, inf: 0.0}}
    (fig,) = stage_figures(before, after)  # nothing observed in "api gc": left out
    assert fig == {"name": "feed shard lock_wait", "n": 1000, "p50_ms": 1.0, "p99_ms": 1.0, "p999_ms": 50.0,
                   "over_50ms": 1}


def test_sched_figures_by_role_from_proc(tmp_path) -> None:  # noqa: ANN001 - pytest's tmp_path
    from clipstream.bench.openloop import sched_figures, sched_snapshot

    def proc(ran_ns: dict[str, tuple[int, int]], pressure_us: int) -> None:
        for pid, cmd, tids in ((10, b"clipstream node\0", ("10", "11")), (20, b"other-thing\0", ("20",))):
            (tmp_path / str(pid) / "task").mkdir(parents=True, exist_ok=True)
            (tmp_path / str(pid) / "cmdline").write_bytes(cmd)
            for tid in tids:
                (tmp_path / str(pid) / "task" / tid).mkdir(exist_ok=True)
                r, w = ran_ns[tid]
                (tmp_path / str(pid) / "task" / tid / "schedstat").write_text(f"{r} {w} 7\n")
        (tmp_path / "pressure").mkdir(exist_ok=True)
        (tmp_path / "pressure" / "cpu").write_text(f"some avg10=1.0 avg60=1.0 avg300=1.0 total={pressure_us}\n")

    proc({"10": (0, 0), "11": (0, 0), "20": (0, 0)}, 0)
    before = sched_snapshot(str(tmp_path))
    ms = 1_000_000
    proc({"10": (300 * ms, 40 * ms), "11": (100 * ms, 60 * ms), "20": (500 * ms, 0)}, 500_000)
    figures = sched_figures(before, sched_snapshot(str(tmp_path)), 2.0)
    assert figures["cpu_ms_per_s"] == {"other": 250, "node": 200}
    assert figures["runqueue_wait_ms_per_s"] == {"node": 50}
    assert figures["cpu_pressure_some_pct"] == 25.0
