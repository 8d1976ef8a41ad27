"""The worker process: builds its parts from settings and runs the media and fan-out consumers."""

from __future__ import annotations

import asyncio
import signal

import structlog

from clipstream.bus.connection import StopRequested, connect_nats
from clipstream.bus.consumer import Consumer
from clipstream.bus.minio_events import decode_minio_event
from clipstream.bus.publisher import Publisher
from clipstream.bus.topology import Topology, ensure_streams
from clipstream.config.settings import Settings
from clipstream.storage.cache import Cache, connect_redis
from clipstream.storage.cql import connect_cql
from clipstream.storage.objects import ObjectStore
from clipstream.storage.repos import FollowRepo, StatsRepo, UserRepo, VideoRepo
from clipstream.workers.cache_keeper import CacheKeeper
from clipstream.workers.fanout import Fanout
from clipstream.workers.media_worker import MediaWorker

__all__ = ["run_worker", "serve"]

log = structlog.get_logger(__name__)


async def serve(settings: Settings, stop: asyncio.Event) -> None:
    """Run until ``stop`` is set."""
    cql = await asyncio.to_thread(connect_cql, settings.cql, settings.cql.keyspace)
    redis = connect_redis(settings.redis)
    nc = None
    try:
        nc = await connect_nats(settings.nats, "clipstream-worker", stop=stop)
        js = nc.jetstream(timeout=settings.nats.timeout)
        topology = Topology.from_settings(settings.nats)
        await ensure_streams(js, topology, settings.nats.replicas)
        publisher = Publisher(nc, topology, settings.actors.partitions, settings.nats.timeout)
        videos = VideoRepo(cql)
        media = MediaWorker(videos, UserRepo(cql), ObjectStore.from_settings(settings.minio), Cache(redis),
                            publisher, settings.media)
        fanout = Fanout(FollowRepo(cql), publisher)
        consumers = [
            Consumer(nc, js, topology, "media-uploads", settings.nats.minio_subject, media.on_minio_event,
                     decoder=decode_minio_event, concurrency=settings.media.workers, batch=settings.media.workers,
                     ack_wait=30.0),
            Consumer(nc, js, topology, "media-complete", topology.video_subject("upload_completed"),
                     media.on_video_event, concurrency=settings.media.workers, batch=settings.media.workers,
                     ack_wait=30.0),
            Consumer(nc, js, topology, "fanout", topology.video_subject("video_ready"), fanout.on_video_event),
        ]
        tasks = [asyncio.create_task(c.run(), name=c.durable) for c in consumers]
        keeper = CacheKeeper(videos, StatsRepo(cql), Cache(redis))
        tasks.append(asyncio.create_task(keeper.run(stop), name="cache-keeper"))
        log.info("worker running", consumers=[c.durable for c in consumers])
        await stop.wait()
        for c in consumers:
            c.stop()
        await asyncio.wait(tasks, timeout=5)
    except StopRequested as exc:
        log.info("worker stopped before it ran", reason=str(exc))
    finally:
        if nc is not None:
            await nc.drain()
        await redis.aclose()
        cql.close()


def run_worker(settings: Settings) -> None:
    """Blocking entry point: runs until SIGINT or SIGTERM."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(settings, stop)

    asyncio.run(main())
