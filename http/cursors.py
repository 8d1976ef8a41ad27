"""Opaque, tamper-proof pagination cursors: a number bound to its owner by an HMAC.

A cursor is urlsafe base64 (no padding) of ``version | value (8 bytes, signed) | mac (16 bytes)``,
the mac being HMAC-SHA256 over ``(scope, value)`` with a key derived for one purpose. A cursor made
for another user (scope), another purpose, or edited in any bit fails verification.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from clipstream.http.security import derive_key

__all__ = ["CursorSigner", "InvalidCursor"]

_VERSION = 1
_BODY = struct.Struct(">Bq")  # version, value
_MAC_BYTES = 16  # 128 bits: forging is out of reach, the cursor stays short
_LENGTH = _BODY.size + _MAC_BYTES


class InvalidCursor(ValueError):
    """A cursor that was not made by this server for this scope."""

    def __init__(self) -> None:
        super().__init__("invalid cursor")


class CursorSigner:
    """Signs and verifies cursors of one purpose (e.g. "feed", "profile")."""

    __slots__ = ("_keyed",)

    def __init__(self, secret: str, purpose: str) -> None:
        # keyed once: each MAC copies this state instead of hashing the key again
        self._keyed = hmac.new(derive_key(secret, f"cursor/{purpose}/v{_VERSION}"), digestmod=hashlib.sha256)

    def _mac(self, scope: int, body: bytes) -> bytes:
        mac = self._keyed.copy()
        mac.update(struct.pack(">q", scope) + body)
        return mac.digest()[:_MAC_BYTES]

    def sign(self, scope: int, value: int) -> str:
        """The cursor carrying ``value`` for ``scope`` (a user id)."""
        body = _BODY.pack(_VERSION, value)
        return _encode(body + self._mac(scope, body))

    def verify(self, scope: int, cursor: str) -> int:
        """The value of a cursor made for ``scope``; raises InvalidCursor otherwise."""
        if len(cursor) > 64:
            raise InvalidCursor()
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        except (binascii.Error, ValueError):
            raise InvalidCursor() from None
        # b64decode skips characters outside the alphabet and ignores trailing bits: only the one
        # canonical spelling of a cursor is accepted.
        if len(raw) != _LENGTH or _encode(raw) != cursor:
            raise InvalidCursor()
        body, mac = raw[: _BODY.size], raw[_BODY.size :]
        if not hmac.compare_digest(mac, self._mac(scope, body)):
            raise InvalidCursor()
        version, value = _BODY.unpack(body)
        if version != _VERSION:
            raise InvalidCursor()
        return value


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
