"""`clipstream bus`: the developer's view of the bus — schemas, subjects, publishing, dead letters."""

from __future__ import annotations

import asyncio
import json
import time

import click
import msgspec

__all__ = ["bus"]


@click.group()
def bus() -> None:
    """Inspect and inject bus messages (subjects, JSON schemas, publish, dead letters)."""


@bus.command()
@click.argument("types", nargs=-1)
def schema(types: tuple[str, ...]) -> None:
    """Print the JSON Schema of every message (or of the given type tags, e.g. like.v1)."""
    from clipstream.bus.messages import MESSAGE_TYPES, BusMessage

    if types:
        unknown = [t for t in types if t not in MESSAGE_TYPES]
        if unknown:
            raise click.UsageError(f"unknown type(s) {unknown}; known: {', '.join(MESSAGE_TYPES)}")
        (_, components) = msgspec.json.schema_components([MESSAGE_TYPES[t] for t in types])
        click.echo(json.dumps(components, indent=2))
    else:
        click.echo(json.dumps(msgspec.json.schema(BusMessage), indent=2))


@bus.command()
def subjects() -> None:
    """Print the subjects, streams and the partition function."""
    from clipstream.bus.topology import Topology
    from clipstream.config import get_settings

    s = get_settings()
    topo = Topology.from_settings(s.nats)
    for spec in topo.streams:
        click.echo(f"stream {spec.name:<12} subjects {', '.join(spec.subjects)}")
    click.echo(f"partitions: {s.actors.partitions}; partition(id) = crc32(decimal id) % {s.actors.partitions}")
    click.echo(f"user-keyed messages (like.v1, follow.v1, new_video.v1) -> "
               f"{topo.feed_subject('<partition of user_id>')}")
    click.echo(f"counter messages (like_delta.v1, view.v1 by video_id; follow_delta.v1 by author_id) -> "
               f"{topo.counter_subject('<partition>')}")
    click.echo(f"lifecycle events -> {topo.video_subject('<tag without version>')}; "
               f"dead letters -> {topo.dlq_subject('<consumer>')}")
    click.echo(f"entity queries (request/reply) -> {topo.rpc_subject('<kind>', '<partition of key>')}; "
               f"node status -> {topo.status_subject()} (all nodes), {topo.status_subject('<node>')}")


@bus.command()
@click.argument("entity_id", type=int)
def partition(entity_id: int) -> None:
    """Print the partition of an id (to address a message by hand)."""
    from clipstream.bus.codec import partition_of
    from clipstream.config import get_settings

    click.echo(partition_of(entity_id, get_settings().actors.partitions))


@bus.command()
@click.argument("type_tag")
@click.argument("payload")
@click.option("--msg-id", default=None, help="JetStream de-duplication id")
def publish(type_tag: str, payload: str, msg_id: str | None) -> None:
    """Validate and publish one message, e.g. `bus publish like.v1 '{"user_id":1,...}'` (`at` defaults to now)."""
    from clipstream.bus.codec import DecodeError, decode

    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise click.UsageError(f"payload is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise click.UsageError("payload must be a JSON object")
    body = {"type": type_tag, **body}
    body.setdefault("at", int(time.time() * 1000))
    try:
        message = decode(json.dumps(body).encode())
    except DecodeError as exc:
        raise click.UsageError(f"not a valid {type_tag}: {exc}") from None
    subject, seq = asyncio.run(_publish(message, msg_id))
    click.echo(f"published {type_tag} to {subject} (stream seq {seq})")


async def _publish(message, msg_id):  # type: ignore[no-untyped-def]
    from clipstream.bus.connection import connect_nats
    from clipstream.bus.publisher import Publisher
    from clipstream.bus.topology import Topology
    from clipstream.config import get_settings

    s = get_settings()
    nc = await connect_nats(s.nats, "clipstream-bus-cli", forever=False)
    try:
        pub = Publisher(nc, Topology.from_settings(s.nats), s.actors.partitions, s.nats.timeout)
        return pub.subject_for(message), await pub.publish(message, msg_id)
    finally:
        await nc.close()


@bus.command()
@click.option("--last", default=20, show_default=True, help="how many of the newest dead letters")
def dlq(last: int) -> None:
    """Print the newest dead letters: origin subject, reason and payload."""
    for line in asyncio.run(_dlq(last)):
        click.echo(line)


async def _dlq(last: int) -> list[str]:
    import nats.errors
    import nats.js.errors

    from clipstream.bus.connection import connect_nats
    from clipstream.bus.codec import DecodeError, decode
    from clipstream.bus.messages import DeadLetter
    from clipstream.bus.topology import Topology
    from clipstream.config import get_settings

    s = get_settings()
    topo = Topology.from_settings(s.nats)
    stream = topo.stream_for(topo.dlq_subject("x"))
    nc = await connect_nats(s.nats, "clipstream-bus-cli", forever=False)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        out = []
        first = max(info.state.first_seq, info.state.last_seq - last + 1)
        for seq in range(first, info.state.last_seq + 1):
            try:
                raw = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                continue  # deleted or aged out: a gap in the sequence, nothing to show
            except nats.errors.Error as exc:
                out.append(f"#{seq}: not readable ({type(exc).__name__}: {exc})")
                continue
            try:
                record = decode(raw.data)
            except DecodeError as exc:  # one bad record must not hide the others
                out.append(f"#{seq} {raw.subject}: not a dead-letter record ({exc})")
                continue
            if isinstance(record, DeadLetter):
                out.append(f"#{seq} {raw.subject} from {record.origin_subject} (seq {record.stream_seq}): "
                           f"{record.reason}\n    {record.payload[:300]}"
                           + (f" … ({record.payload_bytes} bytes)" if record.payload_bytes > 300 else ""))
        return out or ["no dead letters"]
    finally:
        await nc.close()
