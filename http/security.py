"""Password hashing and access tokens: pure computation, no I/O, built once per process from settings.

Passwords are hashed with argon2id (argon2-cffi, RFC 9106 defaults); tokens are HS256 JWTs (pyjwt)
carrying ``sub`` (the user id as a decimal string), ``iat``, ``exp`` and ``role``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from typing import Literal

import argon2
import jwt
import msgspec

__all__ = ["InvalidToken", "Passwords", "Principal", "Tokens", "derive_key"]

Role = Literal["user", "admin"]


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so a token key can never verify a cursor and vice versa."""
    return hmac.new(secret.encode(), f"clipstream/{purpose}".encode(), hashlib.sha256).digest()


class Principal(msgspec.Struct, frozen=True):
    """The authenticated caller of a request."""

    user_id: int
    role: Role = "user"

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


class InvalidToken(Exception):
    """A token is missing, malformed, forged or expired; the message is safe to show."""


class Passwords:
    """argon2id hashing; both operations are run in a thread because each costs tens of ms of CPU."""

    __slots__ = ("_hasher", "_dummy")

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        # Verifying against a real hash when the user does not exist keeps login time the same for
        # known and unknown usernames (no enumeration by timing).
        self._dummy = self._hasher.hash("clipstream-no-such-user")

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify_sync(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy, password) and password_hash is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False

    async def hash(self, password: str) -> str:
        """The argon2id hash of a password (off the event loop)."""
        return await asyncio.to_thread(self.hash_sync, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; ``None`` hash (unknown user) still costs one verification."""
        return await asyncio.to_thread(self.verify_sync, password_hash, password)


class Tokens:
    """Issues and verifies access tokens; verified tokens are remembered until they expire.

    Verification is on every request (the feed hot path): an HMAC check and a JSON decode cost tens
    of microseconds, so a token seen before is answered from a bounded dict instead.
    """

    __slots__ = ("_key", "ttl", "admins", "_seen", "_max_seen")

    ALGORITHM = "HS256"

    def __init__(self, secret: str, ttl: int, admin_usernames: str = "", max_cached: int = 50_000) -> None:
        self._key = derive_key(secret, "jwt/v1")
        self.ttl = ttl
        self.admins = frozenset(u.strip() for u in admin_usernames.split(",") if u.strip())
        self._seen: dict[str, tuple[Principal, int]] = {}
        self._max_seen = max_cached

    def role_of(self, username: str) -> Role:
        return "admin" if username in self.admins else "user"

    def issue(self, user_id: int, username: str, now: int | None = None) -> str:
        """A signed token for a user, valid ``ttl`` seconds from ``now``."""
        iat = int(time.time()) if now is None else now
        claims = {"sub": str(user_id), "iat": iat, "exp": iat + self.ttl, "role": self.role_of(username)}
        return jwt.encode(claims, self._key, algorithm=self.ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; raises InvalidToken otherwise."""
        hit = self._seen.get(token)
        if hit is not None:
            principal, exp = hit
            if exp > time.time():
                return principal
            del self._seen[token]
            raise InvalidToken("token expired")
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[self.ALGORITHM], options={"require": ["sub", "iat", "exp"]}
            )
            principal = Principal(int(claims["sub"]), "admin" if claims.get("role") == "admin" else "user")
        except jwt.ExpiredSignatureError:
            raise InvalidToken("token expired") from None
        except (jwt.InvalidTokenError, ValueError, TypeError):
            raise InvalidToken("invalid token") from None
        if len(self._seen) >= self._max_seen:
            self._seen.clear()  # crude but bounded; a cleared entry only costs one re-verification
        self._seen[token] = (principal, int(claims["exp"]))
        return principal
