"""Requests whose replies come back on one wildcard inbox subscription.

nats-py's ``Client.request`` makes, per call, a NUID token plus ``os.urandom`` bytes, a future
with a done-callback, and an ``asyncio.wait_for`` (a timer and a wrapper); JetStream's
``publish`` adds a coroutine, ``json.loads`` and a dataclass for the ack. On the paths that make
one such call per HTTP request, or thousands per flush, that machinery cost more than the
message (``python -m clipstream.bench.jetpub``).

Here a request is a plain ``nc.publish`` with a reply subject ``<inbox>.<n>``; the inbox's one
subscription settles the call's counter (one future per call, however many messages it sent),
with one timer per call. A reply that comes after its call gave up finds
nobody waiting and is dropped.
"""

from __future__ import annotations

import asyncio
from typing import Any, Sequence

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

__all__ = ["NoReply", "ReplyInbox"]


class NoReply(Exception):
    """No reply came within the call's timeout."""


def _retrieved(future: "asyncio.Future[Any]") -> None:
    """Mark a failed future's exception seen: a call left early (its publish raised) leaves it
    unawaited, and asyncio would log it as never retrieved."""
    if future.done() and not future.cancelled():
        future.exception()


class _Many:
    __slots__ = ("future", "replies", "left")

    def __init__(self, future: "asyncio.Future[list[Msg]]", n: int) -> None:
        self.future = future
        self.replies: list[Any] = [None] * n
        self.left = n

    def settle(self, index: int, msg: Msg) -> None:
        self.replies[index] = msg
        self.left -= 1
        if self.left == 0 and not self.future.done():
            self.future.set_result(self.replies)


#: messages sent between two turns of the event loop. nats-py's publish only appends to a buffer,
#: so a flush's 4,096 outbox publishes held a shard's I/O loop (and every query on it) for their
#: whole length; in slices of this many, a query waits for one slice (~1-3 ms) at most.
YIELD_EVERY = 128


class ReplyInbox:
    """Request/reply on ``nc`` through one inbox subscription, made on first use."""

    __slots__ = ("_nc", "_prefix", "_cut", "_calls", "_next", "_started")

    def __init__(self, nc: NATS) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox() + "."
        self._cut = len(self._prefix)
        #: reply token -> (the call waiting for it, the message's index in that call)
        self._calls: dict[str, tuple[_Many, int]] = {}
        self._next = 0
        self._started: asyncio.Future[None] | None = None

    async def start(self) -> None:
        """Subscribe to the inbox (once; concurrent callers wait for the first)."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                await self._nc.subscribe(self._prefix + "*", cb=self._on_reply, pending_msgs_limit=-1,
                                         pending_bytes_limit=-1)
            except BaseException as exc:
                failed, self._started = self._started, None  # the next call tries again
                failed.set_exception(exc)  # for the callers waiting on this attempt
                failed.exception()  # retrieved: asyncio must not log it when nobody waited
                raise
            self._started.set_result(None)
        elif not self._started.done():
            await asyncio.shield(self._started)

    @property
    def waiting(self) -> int:
        """Requests sent whose reply has not come (nor timed out)."""
        return len(self._calls)

    async def _on_reply(self, msg: Msg) -> None:
        entry = self._calls.pop(msg.subject[self._cut :], None)
        if entry is not None:  # None: the call timed out and was given up
            entry[0].settle(entry[1], msg)

    async def request(self, subject: str, payload: bytes, headers: dict[str, str] | None = None, *,
                      timeout: float) -> Msg:
        """Publish ``payload`` with a reply subject here; the reply (a status message included,
        e.g. 503 when nobody listens on ``subject``). :class:`NoReply` after ``timeout``."""
        return (await self.request_many([(subject, payload, headers)], timeout=timeout))[0]

    async def request_many(self, items: Sequence[tuple[str, bytes, dict[str, str] | None]], *,
                           timeout: float) -> list[Msg]:
        """Publish ``(subject, payload, headers)`` messages all at once; their replies, in order.
        :class:`NoReply` if any is missing after ``timeout`` (every message was sent)."""
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
            for i, ((subject, payload, headers), token) in enumerate(zip(items, tokens), 1):
                await publish(subject, payload, reply=prefix + token, headers=headers)
                if i % YIELD_EVERY == 0:  # nats-py's publish does not yield: let the loop run
                    await asyncio.sleep(0)
            return await call.future
        finally:
            timer.cancel()
            for token in tokens:
                calls.pop(token, None)
            _retrieved(call.future)

    def _expire(self, call: _Many, tokens: Sequence[str], timeout: float) -> None:
        for token in tokens:
            self._calls.pop(token, None)
        if not call.future.done():
            call.future.set_exception(NoReply(f"no reply within {timeout} s"))
