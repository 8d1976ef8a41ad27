"""The Guardian's supervision on both Thespian bases: a shard that cannot start is restarted with
backoff until its budget is spent, then reported failed; a PoisonMessage is counted, not fatal."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Callable, Iterator

import pytest
from thespian.actors import PoisonMessage

from clipstream.bus.status import NodeStatus, ShardStatus
from clipstream.actors.leftovers import session_processes
from clipstream.actors.node import Node
from clipstream.config.settings import Settings

BROKEN = "clipstream.actors.testing:no_such_factory"


@pytest.fixture(params=["simpleSystemBase", "multiprocTCPBase"])
def broken_node(request: pytest.FixtureRequest, actor_settings: Settings, helpers: SimpleNamespace) -> Iterator[Node]:
    """A node whose only kind cannot be built, so every shard crashes at start."""
    node = Node(actor_settings, kinds={"counter": BROKEN}, options=helpers.fast, system_base=request.param)
    node.start()
    session = node.status().guardian.session
    try:
        yield node
    finally:
        node.shutdown()
        if request.param == "multiprocTCPBase":
            assert session_processes(session) == []
            assert not helpers.port_open(actor_settings.actors.admin_port)


def wait_status(node: Node, done: Callable[[NodeStatus], bool], timeout: float = 20.0) -> NodeStatus:
    # Polling also drives simpleSystemBase, which only runs timers inside ask/tell.
    deadline = time.monotonic() + timeout
    while True:
        status = node.status()
        if done(status):
            return status
        if time.monotonic() > deadline:
            pytest.fail(f"status never matched: {status}")
        time.sleep(0.05)


class TestRestartBudget:
    def test_crashing_shard_is_restarted_then_failed(self, broken_node: Node, actor_settings: Settings) -> None:
        started = time.monotonic()
        status = wait_status(broken_node, lambda st: all(s.state == "failed" for s in st.shards))
        elapsed = time.monotonic() - started
        budget = actor_settings.actors.restart_budget
        shard: ShardStatus
        for shard in status.shards:
            assert shard.restarts == budget
            assert "cannot be imported" in shard.error
            assert shard.address == ""
        # Backoff doubled between the restarts: 0.2 + 0.4 + 0.8 s at least.
        backoff = actor_settings.actors.restart_backoff
        assert elapsed >= backoff * (2**budget - 1) * 0.9
        assert [(s.kind, s.partitions) for s in status.shards] == [
            ("counter", (0, 2, 4, 6)),
            ("counter", (1, 3, 5, 7)),
        ]


class TestPoison:
    def test_poison_message_is_counted(self, broken_node: Node) -> None:
        broken_node.actor_system.tell(broken_node.guardian, PoisonMessage("a message", "it failed twice"))
        status = wait_status(broken_node, lambda st: st.guardian.poison == 1)
        assert status.node == "test-node"


class TestShardsKilledTogether:
    def test_no_ghost_child_is_left_and_the_stop_is_prompt(self, actor_settings: Settings, echo_store: object,
                                                           helpers: SimpleNamespace) -> None:
        """Both shards SIGKILLed at once, twice. Thespian reports only one of two deaths that come
        together (the Guardian's liveness check catches the other); the unreported one must not stay
        in Thespian's list of the Guardian's children either: the Guardian would wait for its exit
        at the stop until Thespian's 10 s shutdown bound (the issue-16 stop that hung)."""
        import os
        import signal

        from thespian.system.messages.status import Thespian_ActorStatus, Thespian_StatusReq

        node = Node(actor_settings, kinds={"counter": helpers.echo_factory}, options=helpers.fast)
        node.start()
        session = node.status().guardian.session
        try:
            status = node.wait_ready(30)
            for _ in range(2):
                victims = {s.pid for s in status.shards}
                for pid in victims:
                    os.kill(pid, signal.SIGKILL)
                status = wait_status(node, lambda st: all(s.state == "running" and s.pid and s.pid not in victims
                                                          for s in st.shards))
            answer = node.actor_system.ask(node.guardian, Thespian_StatusReq(), 5)
            assert isinstance(answer, Thespian_ActorStatus)
            assert len(answer.childActors) == len(status.shards), answer.childActors
        finally:
            began = time.monotonic()
            node.shutdown()
            took = time.monotonic() - began
        assert session_processes(session) == []
        assert took < 5.0, f"the stop took {took:.1f}s"
