"""The durable pull consumer of one partition, (re)created at the partition's ack floor."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from clipstream.actors.messages import RuntimeOptions
from clipstream.bus.topology import Topology

__all__ = ["bind_partition"]


async def bind_partition(
    js: JetStreamContext, topology: Topology, kind: str, partition: int, options: RuntimeOptions
) -> JetStreamContext.PullSubscription:
    """(Re)create the partition's durable consumer so that delivery restarts, in order, just
    after its ack floor. A new owner must not wait ``ack_wait`` for the previous owner's
    unacked messages, and it must see them before newer ones: entities skip a message whose
    sequence they already applied, which is only exact if each partition is applied in order."""
    subject = topology.partition_subject(kind, partition)
    stream = topology.stream_for(subject)
    durable = f"{kind}-{partition}"
    start = 0
    try:
        info = await js.consumer_info(stream, durable)
    except NotFoundError:
        pass
    else:
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        start = floor + 1 if floor else (info.config.opt_start_seq or 0)
        await js.delete_consumer(stream, durable)
    config = ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=options.ack_wait,
        max_ack_pending=options.max_ack_pending,
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE if start else DeliverPolicy.ALL,
        opt_start_seq=start or None,
    )
    await js.add_consumer(stream, config)
    return await js.pull_subscribe_bind(durable=durable, stream=stream)
