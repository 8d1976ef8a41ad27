"""MinIO's bucket notification (S3 event) format, as it arrives on the uploads subject."""

from __future__ import annotations

from urllib.parse import unquote_plus

import msgspec

from clipstream.bus.codec import MAX_MESSAGE_BYTES, DecodeError

__all__ = ["ObjectCreated", "decode_minio_event"]


class _Object(msgspec.Struct):
    key: str
    size: int = 0


class _Bucket(msgspec.Struct):
    name: str


class _S3(msgspec.Struct):
    bucket: _Bucket
    object: _Object


class _Record(msgspec.Struct):
    eventName: str
    s3: _S3


class _Event(msgspec.Struct):
    EventName: str = ""
    Records: list[_Record] = []


class ObjectCreated(msgspec.Struct, frozen=True):
    """An object landed in a bucket."""

    bucket: str
    key: str
    size: int


_decoder = msgspec.json.Decoder(_Event)


def decode_minio_event(payload: bytes) -> list[ObjectCreated]:
    """The object-created records of one MinIO event; DecodeError if it is not one."""
    if len(payload) > MAX_MESSAGE_BYTES:
        raise DecodeError(f"event is {len(payload)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    try:
        event = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise DecodeError(f"not a MinIO event: {exc}") from None
    created = [
        ObjectCreated(r.s3.bucket.name, unquote_plus(r.s3.object.key), r.s3.object.size)
        for r in event.Records
        if r.eventName.startswith("s3:ObjectCreated:")
    ]
    if not event.Records:
        raise DecodeError("MinIO event without records")
    return created
