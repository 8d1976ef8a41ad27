"""A dead-letter record stays a valid bus message, however large or hostile the dead message was."""

from __future__ import annotations

import pytest

from clipstream.bus.codec import MAX_MESSAGE_BYTES, decode, encode
from clipstream.bus.consumer import dead_letter_record
from clipstream.bus.messages import DeadLetter


@pytest.mark.parametrize("payload", [
    b"x" * 1_000_000,  # far over the message limit
    b"\x01\x02\x1f" * 300_000,  # control bytes: six bytes each once JSON-escaped
    b"\xff\xfe" * 200_000,  # not UTF-8: replaced, three bytes each
])
def test_record_of_a_huge_message_decodes_and_keeps_its_size(payload: bytes) -> None:
    record, msg_id = dead_letter_record("cs.feed.3", payload, 42, "r" * 5000)
    wire = encode(record)
    assert len(wire) <= MAX_MESSAGE_BYTES
    back = decode(wire)
    assert isinstance(back, DeadLetter)
    assert back.payload_bytes == len(payload) and back.stream_seq == 42 and len(back.reason) == 1000
    assert msg_id == "dlq:cs.feed.3:42"
