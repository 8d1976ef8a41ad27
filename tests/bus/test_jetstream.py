"""JetStream publish/consume against the real NATS server: de-duplication and dead letters."""

from __future__ import annotations

import asyncio

import pytest

from clipstream.bus.codec import decode, encode, partition_of
from clipstream.bus.consumer import Consumer, Reject
from clipstream.bus.messages import DeadLetter, LikeRequest, ViewDelta
from clipstream.bus.publisher import Publisher
from clipstream.bus.topology import Topology
from clipstream.storage.ids import new_id

pytestmark = pytest.mark.integration


def topology(settings) -> Topology:
    return Topology.from_settings(settings.nats)


async def test_a_duplicate_message_id_is_stored_once(nc, js, settings) -> None:
    pub = Publisher(nc, topology(settings), settings.actors.partitions)
    view = ViewDelta(video_id=new_id(), user_id=new_id(), at=1)
    first = await pub.publish(view, msg_id=f"dup-test-{view.video_id}")
    second = await pub.publish(view, msg_id=f"dup-test-{view.video_id}")
    assert first == second  # JetStream answered the duplicate with the original's sequence
    subject = pub.subject_for(view)
    assert subject == topology(settings).counter_subject(partition_of(view.video_id, settings.actors.partitions))
    info = await js.get_last_msg(topology(settings).stream_for(subject), subject)
    assert info.seq == first and decode(info.data) == view


async def test_malformed_messages_are_dead_lettered_and_the_consumer_goes_on(js, nc, settings) -> None:
    topo = topology(settings)
    durable = f"t{new_id()}"
    subject = topo.feed_subject(10_000 + new_id() % 10**6)  # a fresh subject no shard consumes
    seen: list[LikeRequest] = []
    done = asyncio.Event()

    async def handler(message, msg) -> None:
        if isinstance(message, LikeRequest) and message.video_id == 13:
            raise Reject("video 13 is cursed")
        seen.append(message)
        if len(seen) == 2:
            done.set()

    dead: list[DeadLetter] = []
    got_dead = asyncio.Event()

    async def on_dead(msg) -> None:
        record = decode(msg.data)
        if isinstance(record, DeadLetter) and record.origin_subject == subject:
            dead.append(record)
            if len(dead) == 4:
                got_dead.set()

    sub = await nc.subscribe(topo.dlq_subject(durable), cb=on_dead)
    # the stream captures plain publishes on its subjects: exactly what `nats pub` does
    good = LikeRequest(user_id=new_id(), video_id=new_id(), author_id=new_id(), like=True, at=1)
    await js.publish(subject, b"{not json")
    await js.publish(subject, b'{"type":"like.v1","user_id":"abc"}')
    await js.publish(subject, b'{"type":"no_such_type.v9"}')
    await js.publish(subject, b'{"type":"like.v1","user_id":1,"video_id":13,"author_id":1,"like":true,"at":1}')
    await js.publish(subject, encode(good))
    await js.publish(subject, encode(good))
    consumer = Consumer(nc, js, topo, durable, subject, handler, batch=10)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(asyncio.gather(done.wait(), got_dead.wait()), timeout=20)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=5)
        await sub.unsubscribe()
    assert seen == [good, good]
    reasons = [d.reason for d in dead]
    assert any("undecodable" in r for r in reasons) and any("cursed" in r for r in reasons)
    assert any("no_such_type" in r for r in reasons)
    assert all(d.payload and d.stream_seq > 0 for d in dead)
    info = await js.consumer_info(topo.stream_for(subject), durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0  # everything acked: nothing stuck
    await js.delete_consumer(topo.stream_for(subject), durable)
