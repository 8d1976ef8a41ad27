"""Refresh-token rotation, reuse detection and logout, over an in-memory stand-in of the repository
(the real one against Cassandra: tests/http/test_sessions_integration.py)."""

from __future__ import annotations

import pytest

from clipstream.http.security import InvalidToken
from clipstream.http.sessions import Sessions
from clipstream.storage.repos import now_ms
from clipstream.storage.sessions import RefreshRow

SECRET = "unit-test-secret-unit-test-secret-0123"


class MemoryRepo:
    """The SessionRepo contract in a dict (TTL ignored)."""

    def __init__(self) -> None:
        self.rows: dict[bytes, RefreshRow] = {}
        self.revoked: dict[int, str] = {}

    async def insert(self, token_hash, family_id, user_id, username, ttl) -> None:  # noqa: ANN001
        self.rows[token_hash] = RefreshRow(family_id=family_id, user_id=user_id, username=username, used=False,
                                           issued_at=now_ms())

    async def get(self, token_hash):  # noqa: ANN001, ANN201
        return self.rows.get(token_hash)

    async def claim(self, token_hash, ttl_left) -> bool:  # noqa: ANN001
        row = self.rows.get(token_hash)
        if row is None or row.used:
            return False
        self.rows[token_hash] = RefreshRow(**{**{f: getattr(row, f) for f in row.__struct_fields__}, "used": True})
        return True

    async def revoke_family(self, family_id, reason, ttl) -> None:  # noqa: ANN001
        self.revoked[family_id] = reason

    async def family_revoked(self, family_id) -> bool:  # noqa: ANN001
        return family_id in self.revoked


@pytest.fixture
def repo() -> MemoryRepo:
    return MemoryRepo()


@pytest.fixture
def sessions(repo: MemoryRepo) -> Sessions:
    return Sessions(repo, SECRET, ttl=3600)  # type: ignore[arg-type]


class TestRotation:
    async def test_a_refresh_returns_the_user_and_a_new_token(self, sessions: Sessions) -> None:
        first = await sessions.start(7, "ann")
        user, second = await sessions.rotate(first)
        assert user == (7, "ann")
        assert second != first
        user, third = await sessions.rotate(second)
        assert user == (7, "ann") and third not in (first, second)

    async def test_only_a_hash_is_stored(self, sessions: Sessions, repo: MemoryRepo) -> None:
        token = await sessions.start(7, "ann")
        (stored,) = repo.rows
        assert token.encode() not in stored and len(stored) == 32

    async def test_an_unknown_token_is_refused(self, sessions: Sessions) -> None:
        with pytest.raises(InvalidToken, match="invalid or expired"):
            await sessions.rotate("no-such-token")


class TestReuse:
    async def test_reusing_a_rotated_token_signs_the_whole_session_out(self, sessions: Sessions, repo: MemoryRepo) -> None:
        first = await sessions.start(7, "ann")
        _, second = await sessions.rotate(first)
        with pytest.raises(InvalidToken, match="already used"):
            await sessions.rotate(first)  # a copy of the spent token
        assert list(repo.revoked.values()) == ["reuse"]
        with pytest.raises(InvalidToken, match="signed out"):
            await sessions.rotate(second)  # the rightful holder's successor is dead too

    async def test_other_sessions_of_the_user_live_on(self, sessions: Sessions) -> None:
        a, b = await sessions.start(7, "ann"), await sessions.start(7, "ann")
        _, a2 = await sessions.rotate(a)
        with pytest.raises(InvalidToken):
            await sessions.rotate(a)
        (_, _), b2 = await sessions.rotate(b)
        assert b2


class TestLogout:
    async def test_logout_revokes_the_session(self, sessions: Sessions, repo: MemoryRepo) -> None:
        token = await sessions.start(7, "ann")
        await sessions.end(token)
        assert list(repo.revoked.values()) == ["logout"]
        with pytest.raises(InvalidToken, match="signed out"):
            await sessions.rotate(token)

    async def test_logout_of_an_unknown_token_is_refused(self, sessions: Sessions) -> None:
        with pytest.raises(InvalidToken):
            await sessions.end("nope")
