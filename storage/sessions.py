"""Refresh tokens of signed-in sessions, stored by hash with a TTL, and the revoked families.

The repository stores and reads; what a refresh, a reuse or a logout means is decided by
:mod:`clipstream.http.sessions`. Like every repository it is handed an open Cql.
"""

from __future__ import annotations

import msgspec

from clipstream.storage.cql import Cql
from clipstream.storage.repos import now_ms, timestamp_ms

__all__ = ["RefreshRow", "SessionRepo"]


class RefreshRow(msgspec.Struct, frozen=True, kw_only=True):
    """A stored refresh token (its hash is the key)."""

    family_id: int
    user_id: int
    username: str
    used: bool
    issued_at: int  # unix ms


class SessionRepo:
    """``refresh_tokens`` and ``revoked_token_families`` (migration 0004)."""

    def __init__(self, cql: Cql) -> None:
        self.cql = cql

    async def insert(self, token_hash: bytes, family_id: int, user_id: int, username: str, ttl: int) -> None:
        await self.cql.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, user_id, username, used, issued_at) "
            "VALUES (?, ?, ?, ?, false, ?) USING TTL ?",
            (token_hash, family_id, user_id, username, now_ms(), ttl),
        )

    async def get(self, token_hash: bytes) -> RefreshRow | None:
        rows = await self.cql.execute(
            "SELECT family_id, user_id, username, used, issued_at FROM refresh_tokens WHERE token_hash = ?",
            (token_hash,),
        )
        if not rows:
            return None
        r = rows[0]
        return RefreshRow(family_id=r.family_id, user_id=r.user_id, username=r.username, used=bool(r.used),
                          issued_at=timestamp_ms(r.issued_at))

    async def claim(self, token_hash: bytes, ttl_left: int) -> bool:
        """Mark an unused token used; False if it was used already (or is gone). A lightweight
        transaction, so of two requests presenting the same token at once only one wins. The
        update carries the row's remaining TTL: a cell written without one would keep the row."""
        rows = await self.cql.execute(
            "UPDATE refresh_tokens USING TTL ? SET used = true WHERE token_hash = ? IF used = false",
            (max(ttl_left, 1), token_hash),
        )
        return bool(rows and rows[0].applied)

    async def revoke_family(self, family_id: int, reason: str, ttl: int) -> None:
        await self.cql.execute(
            "INSERT INTO revoked_token_families (family_id, reason, revoked_at) VALUES (?, ?, ?) USING TTL ?",
            (family_id, reason, now_ms(), ttl),
        )

    async def family_revoked(self, family_id: int) -> bool:
        rows = await self.cql.execute(
            "SELECT family_id FROM revoked_token_families WHERE family_id = ?", (family_id,)
        )
        return bool(rows)
