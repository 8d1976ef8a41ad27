"""The lease arithmetic of :mod:`clipstream.actors.leases`: fair share, claims, surplus (no NATS)."""

from __future__ import annotations

import pytest

from clipstream.actors.leases import bucket_name, fair_share, lease_key, plan


class TestFairShare:
    @pytest.mark.parametrize(("partitions", "live", "share"), [(64, 1, 64), (64, 2, 32), (64, 3, 22), (8, 5, 2), (4, 8, 1)])
    def test_ceil_of_partitions_per_live_node(self, partitions: int, live: int, share: int) -> None:
        assert fair_share(partitions, live) == share

    def test_no_live_node_counts_as_one(self) -> None:
        assert fair_share(64, 0) == 64

    def test_shares_cover_every_partition(self) -> None:
        for live in range(1, 20):
            assert fair_share(64, live) * live >= 64


class TestPlan:
    def test_single_node_claims_everything(self) -> None:
        step = plan(8, 1, held=[], free=range(8))
        assert sorted(step.claim) == list(range(8)) and step.release == ()

    def test_claims_only_up_to_the_share(self) -> None:
        step = plan(8, 2, held=[0, 1], free=[4, 5, 6, 7])
        assert len(step.claim) == 2 and set(step.claim) <= {4, 5, 6, 7}

    def test_offset_spreads_first_claims(self) -> None:
        assert plan(8, 2, held=[], free=range(8), offset=5).claim[0] == 5

    def test_surplus_released_when_nothing_is_free(self) -> None:
        step = plan(8, 2, held=range(8), free=[])
        assert step.claim == () and len(step.release) == 4

    def test_no_release_while_partitions_are_free(self) -> None:
        # the other nodes can reach their share from the free ones
        assert plan(8, 2, held=range(7), free=[7]).release == ()

    def test_at_share_claims_nothing_but_orphans(self) -> None:
        step = plan(8, 2, held=[0, 1, 2, 3], free=[6, 7], orphans=[7])
        assert step.claim == (7,)

    def test_joiner_and_owner_converge(self) -> None:
        """Two nodes, played round by round: the owner of all hands off half, the joiner takes it."""
        a, b = set(range(8)), set()
        for _ in range(3):
            free = set(range(8)) - a - b
            step_a = plan(8, 2, held=a, free=free)
            a -= set(step_a.release)
            free = set(range(8)) - a - b
            b |= set(plan(8, 2, held=b, free=free).claim)
        assert len(a) == len(b) == 4 and not a & b

    def test_held_partitions_are_never_claimed(self) -> None:
        assert plan(8, 1, held=[1], free=[1, 2]).claim == (2,)


def test_names() -> None:
    assert bucket_name("cs.test") == "LEASES_cs_test"
    assert lease_key("counter", 7) == "counter.7"
