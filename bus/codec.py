"""One encoder and one typed decoder for every bus message, plus the partition function."""

from __future__ import annotations

import zlib

import msgspec

from clipstream.bus.messages import BusMessage

__all__ = ["MAX_MESSAGE_BYTES", "DecodeError", "decode", "encode", "partition_of"]

MAX_MESSAGE_BYTES = 64 * 1024

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(BusMessage)


class DecodeError(ValueError):
    """A payload is not a valid bus message; the message says why (for the dead-letter record)."""


def encode(msg: BusMessage) -> bytes:
    """JSON bytes of a bus message, tag included."""
    return _encoder.encode(msg)


def decode(payload: bytes) -> BusMessage:
    """Decode and validate one message; raises DecodeError with a readable reason."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"message is {len(payload)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        return _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise DecodeError(str(exc)) from None


def partition_of(entity_id: int, partitions: int) -> int:
    """The partition owning an entity: CRC-32 of its decimal id, modulo the partition count.

    Documented so that any tool (``nats pub``) can compute the subject of a message by hand.
    """
    return zlib.crc32(str(entity_id).encode()) % partitions
