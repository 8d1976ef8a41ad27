"""The Guardian's restart policy and partition split, as plain logic."""

from __future__ import annotations

from clipstream.actors.guardian import split_partitions
from clipstream.actors.supervision import RestartPolicy


class TestRestartPolicy:
    def test_backoff_doubles_per_restart(self) -> None:
        policy = RestartPolicy(backoff=0.5, budget=5)
        assert [policy.on_exit("a", t) for t in (0, 1, 2, 3)] == [0.5, 1.0, 2.0, 4.0]

    def test_over_budget_gives_up(self) -> None:
        policy = RestartPolicy(backoff=0.1, budget=2)
        assert policy.on_exit("a", 0) is not None
        assert policy.on_exit("a", 1) is not None
        assert policy.on_exit("a", 2) is None
        assert policy.on_exit("a", 3) is None

    def test_budget_is_per_window(self) -> None:
        policy = RestartPolicy(backoff=0.1, budget=2, window=600)
        policy.on_exit("a", 0)
        policy.on_exit("a", 10)
        assert policy.on_exit("a", 20) is None
        # Ten minutes after the first crashes they no longer count, and the backoff starts over.
        assert policy.on_exit("a", 611) == 0.1
        assert policy.restarts("a", 611) == 1

    def test_slots_are_independent(self) -> None:
        policy = RestartPolicy(backoff=1, budget=1)
        assert policy.on_exit(("counter", 0), 0) == 1
        assert policy.on_exit(("counter", 1), 0) == 1
        assert policy.on_exit(("counter", 0), 1) is None

    def test_delay_is_capped(self) -> None:
        policy = RestartPolicy(backoff=1, budget=20, max_delay=5)
        delays = [policy.on_exit("a", t) for t in range(6)]
        assert delays == [1, 2, 4, 5, 5, 5]


class TestSplitPartitions:
    def test_every_partition_owned_once(self) -> None:
        split = split_partitions(64, 3)
        owned = sorted(p for shard in split for p in shard)
        assert owned == list(range(64))
        assert [len(s) for s in split] == [22, 21, 21]

    def test_more_shards_than_partitions(self) -> None:
        assert split_partitions(2, 4) == [(0,), (1,), (), ()]
