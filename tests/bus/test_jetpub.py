"""JetPublisher against the real NATS server: acks, sequences, de-duplication, refusals, timeouts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from nats.js.api import StreamConfig, StorageType

from clipstream.bus.jetpub import JetPublisher, PublishFailed

pytestmark = pytest.mark.integration


@pytest.fixture
async def stream(js):
    """A scratch stream of its own (subjects ``jp<hex>.>``), deleted afterwards."""
    token = f"jp{uuid.uuid4().hex[:10]}"
    name = token.upper()
    await js.add_stream(StreamConfig(name=name, subjects=[f"{token}.>"], storage=StorageType.MEMORY,
                                     duplicate_window=60.0, max_msg_size=1024))
    try:
        yield token, name
    finally:
        await js.delete_stream(name)


async def test_one_publish_returns_the_stored_sequence(nc, js, stream) -> None:
    token, name = stream
    jet = JetPublisher(nc)
    first = await jet.publish(f"{token}.a", b"one", timeout=5)
    second = await jet.publish(f"{token}.a", b"two", timeout=5)
    assert second == first + 1
    stored = await js.get_msg(name, second)
    assert stored.data == b"two"
    assert jet.waiting == 0


async def test_many_publishes_come_back_in_order_and_are_stored_in_order(nc, js, stream) -> None:
    token, name = stream
    jet = JetPublisher(nc)
    items = [(f"{token}.{i % 7}", f"m{i}".encode(), f"id-{i}") for i in range(3000)]
    seqs = await jet.publish_many(items, timeout=10)
    assert seqs == list(range(seqs[0], seqs[0] + 3000))
    assert (await js.get_msg(name, seqs[1234])).data == b"m1234"
    assert (await js.stream_info(name)).state.messages == 3000
    assert jet.waiting == 0


async def test_a_retried_batch_is_stored_once(nc, js, stream) -> None:
    token, name = stream
    jet = JetPublisher(nc)
    items = [(f"{token}.x", f"m{i}".encode(), f"dup-{i}") for i in range(50)]
    first = await jet.publish_many(items, timeout=5)
    again = await jet.publish_many(items, timeout=5)  # JetStream answers duplicates with the originals' sequences
    assert again == first
    assert (await js.stream_info(name)).state.messages == 50


async def test_a_subject_no_stream_takes_fails_instead_of_hanging(nc, stream) -> None:
    jet = JetPublisher(nc)
    with pytest.raises(PublishFailed, match="no stream takes the subject"):
        await jet.publish(f"nostream{uuid.uuid4().hex[:8]}.x", b"lost", timeout=5)
    token, _ = stream
    with pytest.raises(PublishFailed):  # one bad subject fails the batch, once every ack is in
        await jet.publish_many([(f"{token}.ok", b"fine", None), (f"nostream{uuid.uuid4().hex[:8]}.y", b"lost", None)],
                               timeout=5)
    assert jet.waiting == 0


async def test_a_refused_publish_names_jetstreams_reason(nc, stream) -> None:
    token, _ = stream
    jet = JetPublisher(nc)
    with pytest.raises(PublishFailed, match="refused"):
        await jet.publish(f"{token}.big", b"x" * 2000, timeout=5)  # over the stream's max_msg_size


async def test_a_missing_ack_times_out_and_a_late_one_is_ignored(nc) -> None:
    """A plain subscriber takes the subject and answers late: the publish gives up at its timeout,
    and the late answer finds nobody waiting."""
    subject = f"slow{uuid.uuid4().hex[:8]}.x"
    answered = asyncio.Event()

    async def late(msg) -> None:
        await asyncio.sleep(0.5)
        await nc.publish(msg.reply, b'{"stream":"FAKE","seq":9}')
        answered.set()

    await nc.subscribe(subject, cb=late)
    jet = JetPublisher(nc)
    with pytest.raises(PublishFailed, match="within 0.2 s"):
        await jet.publish(subject, b"x", timeout=0.2)
    await asyncio.wait_for(answered.wait(), 5)
    await nc.flush()
    assert jet.waiting == 0
    # and the publisher still works for the next call
    assert await asyncio.wait_for(jet.publish(subject, b"y", timeout=5), 5) == 9


async def test_concurrent_first_calls_subscribe_once(nc, stream) -> None:
    token, _ = stream
    jet = JetPublisher(nc)
    subs_before = len(nc._subs)
    seqs = await asyncio.gather(*(jet.publish(f"{token}.c", b"c", timeout=5) for _ in range(20)))
    assert sorted(seqs) == list(range(min(seqs), min(seqs) + 20))
    assert len(nc._subs) == subs_before + 1
