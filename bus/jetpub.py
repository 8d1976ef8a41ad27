"""JetStream publishes whose acks come back on one :class:`~clipstream.bus.inbox.ReplyInbox`.

nats-py's ``JetStreamContext.publish`` is a request per message: a coroutine (a Task when many are
gathered), a future, an ``asyncio.wait_for`` with its timer, the ack parsed into a dataclass
through ``json.loads``. A shard's write-behind publishes thousands of outbox messages per flush;
measured in a like run (``make bench``), a busy feed shard published ~2,600 a second that way,
fewer than the likes arriving, so its flushes fell behind for as long as the run lasted.

Here a publish is a request on the inbox and its ack is decoded by msgspec. What JetStream
promises is unchanged: an ack means stored, ``Nats-Msg-Id`` de-duplicates a retried publish.
"""

from __future__ import annotations

from typing import Any, Sequence

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from clipstream.bus.inbox import NoReply, ReplyInbox

__all__ = ["JetPublisher", "PublishFailed"]


class PublishFailed(Exception):
    """JetStream refused a publish, nothing answered it, or its ack did not come in time."""


class _Ack(msgspec.Struct):
    stream: str = ""
    seq: int = 0
    duplicate: bool = False
    error: Any = None


_decode_ack = msgspec.json.Decoder(_Ack).decode


def _seq_of(msg: Msg) -> int | str:
    """The stream sequence an ack carries, or the reason it is not an ack (a str)."""
    status = JetStreamContext.is_status_msg(msg)
    if status is not None:  # 503 is "no responders": no stream takes the subject
        return f"no JetStream ack (status {status}{': no stream takes the subject' if status == '503' else ''})"
    data = msg.data
    try:
        ack = _decode_ack(data)
    except msgspec.DecodeError:
        return f"not a JetStream ack: {data[:200]!r}"
    if ack.error is not None or not ack.stream:
        return f"JetStream refused the publish: {ack.error!r}"
    return ack.seq


class JetPublisher:
    """Publishes to JetStream on ``nc`` and awaits the acks (the inbox subscribes on first use)."""

    __slots__ = ("inbox",)

    def __init__(self, nc: NATS) -> None:
        self.inbox = ReplyInbox(nc)

    @property
    def waiting(self) -> int:
        """Publishes sent whose ack has not come (nor timed out)."""
        return self.inbox.waiting

    async def publish(self, subject: str, payload: bytes, msg_id: str | None = None, *, timeout: float) -> int:
        """Publish one message; returns its stream sequence once JetStream stored it."""
        return (await self.publish_many([(subject, payload, msg_id)], timeout=timeout))[0]

    async def publish_many(self, items: Sequence[tuple[str, bytes, str | None]], *, timeout: float) -> list[int]:
        """Publish ``(subject, payload, msg_id)`` messages all in flight at once; returns their
        stream sequences in order. Any refusal or a missing ack fails the whole call (after every
        message was sent): publish them again, their msg-ids make the retry store each once."""
        try:
            acks = await self.inbox.request_many(
                [(subject, payload, {"Nats-Msg-Id": msg_id} if msg_id else None) for subject, payload, msg_id in items],
                timeout=timeout,
            )
        except NoReply:
            raise PublishFailed(f"no JetStream ack within {timeout} s") from None
        seqs = [_seq_of(ack) for ack in acks]
        for seq in seqs:
            if isinstance(seq, str):
                raise PublishFailed(seq)
        return seqs  # type: ignore[return-value]
