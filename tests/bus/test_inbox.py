"""ReplyInbox against the real NATS server: each caller gets its own reply, in order for a batch."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from clipstream.bus.inbox import NoReply, ReplyInbox

pytestmark = pytest.mark.integration


@pytest.fixture
async def echo(nc):
    """A responder on its own subject that answers ``<payload>!`` after a random short delay, so
    replies come back out of order."""
    subject = f"echo{uuid.uuid4().hex[:8]}"

    async def answer(msg) -> None:
        await asyncio.sleep(random.random() * 0.02)
        await nc.publish(msg.reply, msg.data + b"!")

    async def dispatch(msg) -> None:  # answers concurrently, so they overtake each other
        asyncio.ensure_future(answer(msg))

    sub = await nc.subscribe(subject, cb=dispatch)
    try:
        yield subject
    finally:
        await sub.unsubscribe()


async def test_concurrent_requests_each_get_their_own_reply(nc, echo) -> None:
    inbox = ReplyInbox(nc)
    replies = await asyncio.gather(*(inbox.request(echo, f"q{i}".encode(), timeout=5) for i in range(200)))
    assert [r.data for r in replies] == [f"q{i}!".encode() for i in range(200)]
    assert inbox.waiting == 0


async def test_a_batch_gets_its_replies_in_its_order(nc, echo) -> None:
    inbox = ReplyInbox(nc)
    replies = await inbox.request_many([(echo, f"b{i}".encode(), None) for i in range(300)], timeout=5)
    assert [r.data for r in replies] == [f"b{i}!".encode() for i in range(300)]


async def test_nobody_listening_is_a_503_status_reply_not_a_wait(nc) -> None:
    inbox = ReplyInbox(nc)
    reply = await asyncio.wait_for(inbox.request(f"nobody{uuid.uuid4().hex[:8]}", b"?", timeout=5), 4)
    assert reply.data == b"" and reply.headers and reply.headers.get("Status") == "503"


async def test_a_batch_with_one_unanswered_request_fails_at_its_timeout(nc, echo) -> None:
    silent = f"silent{uuid.uuid4().hex[:8]}"
    async def ignore(msg) -> None:  # takes the request, never answers
        pass

    sub = await nc.subscribe(silent, cb=ignore)
    inbox = ReplyInbox(nc)
    with pytest.raises(NoReply, match="within 0.3 s"):
        await inbox.request_many([(echo, b"a", None), (silent, b"b", None)], timeout=0.3)
    assert inbox.waiting == 0
    await sub.unsubscribe()
