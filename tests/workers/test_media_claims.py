"""A redelivered upload whose claim another worker still holds is not acked away (real CQL and NATS).

A worker killed right after claiming an upload left its claim 30 s to live, and JetStream's
redelivery (30 s after the first delivery, which came before the claim) could arrive first: the
new worker found the claim live, returned, and its ack dropped the upload for good; the video
stayed "processing" (test_faults.py's worker-kill test timed out that way on a loaded machine).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from clipstream.bus.codec import encode
from clipstream.bus.consumer import Consumer, RetryLater
from clipstream.bus.messages import ViewDelta
from clipstream.bus.topology import Topology
from clipstream.storage.ids import new_id
from clipstream.storage.models import Video
from clipstream.storage.repos import VideoRepo, now_ms
from clipstream.workers.media_worker import CLAIM_LEASE_MS, MediaWorker

pytestmark = pytest.mark.integration


async def test_a_live_claim_of_another_worker_defers_the_message(cql, settings) -> None:
    videos = VideoRepo(cql)
    author, vid = new_id(), new_id()
    await videos.create(Video(video_id=vid, author_id=author, status="uploading", file_size=10, file_format="mp4",
                              upload_key=f"{author}/{vid}.mp4", created_at=now_ms()))
    assert (await videos.claim_processing(vid, CLAIM_LEASE_MS)).taken  # the worker that then dies
    worker = MediaWorker(videos, None, None, None, None, settings.media)  # type: ignore[arg-type]
    with pytest.raises(RetryLater) as info:
        await worker.process(vid)
    # back once that claim has lapsed (it was taken a moment ago), not before
    assert CLAIM_LEASE_MS / 1000 - 5 < info.value.delay <= CLAIM_LEASE_MS / 1000 + 1
    assert (await videos.get(vid)).status == "processing"


async def test_retry_later_redelivers_after_its_delay(nc, js, settings) -> None:
    topo = Topology.from_settings(settings.nats)
    durable = f"t{new_id()}"
    subject = topo.feed_subject(10_000 + new_id() % 10**6)  # a fresh subject no shard consumes
    seen: list[float] = []
    done = asyncio.Event()

    async def handler(message, msg) -> None:
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise RetryLater(2.0, "not yet")
        done.set()

    await js.publish(subject, encode(ViewDelta(video_id=new_id(), user_id=new_id(), at=1)))
    consumer = Consumer(nc, js, topo, durable, subject, handler, batch=10, retry_delay=0.1)
    task = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(done.wait(), timeout=20)
    finally:
        consumer.stop()
        await asyncio.wait_for(task, timeout=5)
    assert len(seen) == 2 and seen[1] - seen[0] >= 1.8  # its own delay, not the 0.1 s retry_delay
    assert consumer.deferred == 1 and consumer.handled == 1
    info = await js.consumer_info(topo.stream_for(subject), durable)
    assert info.num_ack_pending == 0 and info.num_pending == 0
    await js.delete_consumer(topo.stream_for(subject), durable)
