"""JetStream publishes whose acks come back on one wildcard inbox.

nats-py's ``JetStreamContext.publish`` is a request per message: a coroutine (a Task when many are
gathered), a future, an ``asyncio.wait_for`` with its timer, the ack parsed into a dataclass
through ``json.loads``. A shard's write-behind publishes thousands of outbox messages per flush;
measured in a like run (``make bench``), a busy feed shard published ~2,600 a second that way,
fewer than the likes arriving, so its flushes fell behind for as long as the run lasted.

Here a publish is a plain ``nc.publish`` with a reply subject under one inbox subscription; the
ack is decoded by msgspec and settles the caller's future (one publish) or the batch's counter
(many, one future for all of them), with one timer per call. What JetStream promises is
unchanged: an ack means stored, ``Nats-Msg-Id`` de-duplicates a retried publish.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

import msgspec
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

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
    data = msg.data
    if not data:  # a status message: 503 is "no responders" (no stream takes the subject)
        status = (msg.headers or {}).get("Status", "?")
        return f"no JetStream ack (status {status}{': no stream takes the subject' if status == '503' else ''})"
    try:
        ack = _decode_ack(data)
    except msgspec.DecodeError:
        return f"not a JetStream ack: {data[:200]!r}"
    if ack.error is not None or not ack.stream:
        return f"JetStream refused the publish: {ack.error!r}"
    return ack.seq


def _retrieved(future: "asyncio.Future[Any]") -> None:
    """Mark a failed future's exception seen: a call left early (its publish raised) leaves it
    unawaited, and asyncio would log it as never retrieved."""
    if future.done() and not future.cancelled():
        future.exception()


class _One:
    __slots__ = ("future",)

    def __init__(self, future: "asyncio.Future[int]") -> None:
        self.future = future

    def settle(self, index: int, result: int | str) -> None:
        if self.future.done():
            return
        if isinstance(result, str):
            self.future.set_exception(PublishFailed(result))
        else:
            self.future.set_result(result)


class _Many:
    __slots__ = ("future", "seqs", "left", "error")

    def __init__(self, future: "asyncio.Future[list[int]]", n: int) -> None:
        self.future = future
        self.seqs = [0] * n
        self.left = n
        self.error: str | None = None

    def settle(self, index: int, result: int | str) -> None:
        if isinstance(result, str):
            self.error = self.error or result
        else:
            self.seqs[index] = result
        self.left -= 1
        if self.left == 0 and not self.future.done():
            if self.error is not None:
                self.future.set_exception(PublishFailed(self.error))
            else:
                self.future.set_result(self.seqs)


class JetPublisher:
    """Publishes to JetStream on ``nc`` and awaits the acks; :meth:`start` once before use."""

    __slots__ = ("_nc", "_prefix", "_cut", "_calls", "_next", "_started")

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox() + "."
        self._cut = len(self._prefix)
        #: reply token -> (the call waiting for it, the message's index in that call)
        self._calls: dict[str, tuple[_One | _Many, int]] = {}
        self._next = 0
        self._started: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Subscribe to the ack inbox (once; concurrent callers wait for the first)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self._nc.subscribe(self._prefix + "*", cb=self._on_ack, pending_msgs_limit=-1,
                                         pending_bytes_limit=-1)
            except BaseException as exc:
                self._started.set_exception(exc)
                self._started.exception()  # retrieved: a later caller re-raises it, nobody logs it
                started, self._started = self._started, None
                raise
            self._started.set_result(None)
        elif not self._started.done():
            await asyncio.shield(self._started)

    @property
    def waiting(self) -> int:
        """Publishes sent whose ack has not come (nor timed out)."""
        return len(self._calls)

    async def _on_ack(self, msg: Msg) -> None:
        entry = self._calls.pop(msg.subject[self._cut :], None)
        if entry is not None:  # None: the call timed out and was given up
            entry[0].settle(entry[1], _seq_of(msg))

    async def publish(self, subject: str, payload: bytes, msg_id: str | None = None, *, timeout: float) -> int:
        """Publish one message; returns its stream sequence once JetStream stored it."""
        if self._started is None or not self._started.done():
            await self.start()
        loop = asyncio.get_running_loop()
        call = _One(loop.create_future())
        token = str(self._next)
        self._next += 1
        self._calls[token] = (call, 0)
        timer = loop.call_later(timeout, self._expire, call, (token,), timeout)
        try:
            await self._nc.publish(subject, payload, reply=self._prefix + token,
                                   headers={"Nats-Msg-Id": msg_id} if msg_id else None)
            return await call.future
        finally:
            timer.cancel()
            self._calls.pop(token, None)
            _retrieved(call.future)

    async def publish_many(self, items: Sequence[tuple[str, bytes, str | None]], *, timeout: float) -> list[int]:
        """Publish ``(subject, payload, msg_id)`` messages all in flight at once; returns their
        stream sequences in order. Any refusal or a missing ack fails the whole call (after every
        message was sent): publish them again, their msg-ids make the retry store each once."""
        if not items:
            return []
        if self._started is None or not self._started.done():
            await self.start()
        loop = asyncio.get_running_loop()
        call = _Many(loop.create_future(), len(items))
        first = self._next
        self._next += len(items)
        tokens = [str(first + i) for i in range(len(items))]
        calls = self._calls
        for i, token in enumerate(tokens):
            calls[token] = (call, i)
        timer = loop.call_later(timeout, self._expire, call, tokens, timeout)
        publish, prefix = self._nc.publish, self._prefix
        try:
            for (subject, payload, msg_id), token in zip(items, tokens):
                await publish(subject, payload, reply=prefix + token, headers={"Nats-Msg-Id": msg_id} if msg_id else None)
            return await call.future
        finally:
            timer.cancel()
            for token in tokens:
                calls.pop(token, None)
            _retrieved(call.future)

    def _expire(self, call: _One | _Many, tokens: Sequence[str], timeout: float) -> None:
        for token in tokens:
            self._calls.pop(token, None)
        if not call.future.done():
            call.future.set_exception(PublishFailed(f"no JetStream ack within {timeout} s"))
