"""Signed-in sessions: refresh tokens, rotated on every use, revoked by logout or by reuse.

A login starts a *family*; each refresh spends the token presented and returns the family's next
one. A token presented a second time was copied (the rightful client already holds its
successor), so the whole family is revoked: the thief and the victim are both signed out, as
OAuth 2.0 Security BCP (RFC 9700 §4.14) recommends. The store holds only an HMAC of each token
(:mod:`clipstream.storage.sessions`); a token is 256 random bits, so no slow hash is needed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from clipstream.http.security import InvalidToken, derive_key
from clipstream.storage.ids import new_id
from clipstream.storage.repos import now_ms
from clipstream.storage.sessions import SessionRepo

__all__ = ["Sessions", "SessionUser"]

SessionUser = tuple[int, str]
"""(user_id, username) of a session."""


class Sessions:
    """Issues, rotates and revokes refresh tokens; raises InvalidToken (a 401) for any refused one."""

    __slots__ = ("_key", "_repo", "ttl")

    def __init__(self, repo: SessionRepo, secret: str, ttl: int) -> None:
        self._key = derive_key(secret, "refresh/v1")
        self._repo = repo
        self.ttl = ttl

    def _hash(self, token: str) -> bytes:
        return hmac.new(self._key, token.encode(), hashlib.sha256).digest()

    async def _issue(self, family_id: int, user_id: int, username: str) -> str:
        token = secrets.token_urlsafe(32)
        await self._repo.insert(self._hash(token), family_id, user_id, username, self.ttl)
        return token

    async def start(self, user_id: int, username: str) -> str:
        """The first refresh token of a new session (at login)."""
        return await self._issue(new_id(), user_id, username)

    async def rotate(self, token: str) -> tuple[SessionUser, str]:
        """Spend ``token``: its session's user and the session's next token."""
        h = self._hash(token)
        row = await self._repo.get(h)
        if row is None:
            raise InvalidToken("invalid or expired refresh token")
        if await self._repo.family_revoked(row.family_id):
            raise InvalidToken("this session has been signed out")
        ttl_left = self.ttl - (now_ms() - row.issued_at) // 1000
        if row.used or not await self._repo.claim(h, ttl_left):
            await self._repo.revoke_family(row.family_id, "reuse", self.ttl)
            raise InvalidToken("refresh token already used: the session is signed out, log in again")
        return (row.user_id, row.username), await self._issue(row.family_id, row.user_id, row.username)

    async def end(self, token: str) -> None:
        """Sign out the session of ``token`` (every token of its family stops working)."""
        row = await self._repo.get(self._hash(token))
        if row is None:
            raise InvalidToken("invalid or expired refresh token")
        await self._repo.revoke_family(row.family_id, "logout", self.ttl)
