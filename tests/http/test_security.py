"""Password hashing (argon2id) and access tokens (HS256 JWT)."""

from __future__ import annotations

import time

import jwt
import pytest

from clipstream.http.security import InvalidToken, Passwords, Principal, Tokens, derive_key

SECRET = "a-test-secret-of-enough-length-for-hs256"


class TestPasswords:
    async def test_hash_is_argon2id_and_verifies(self) -> None:
        p = Passwords()
        h = await p.hash("correct horse battery")
        assert h.startswith("$argon2id$")
        assert "correct horse" not in h
        assert await p.verify(h, "correct horse battery")

    async def test_wrong_password_and_unknown_user_fail(self) -> None:
        p = Passwords()
        h = await p.hash("correct horse battery")
        assert not await p.verify(h, "wrong horse battery")
        assert not await p.verify(None, "correct horse battery")
        assert not await p.verify("not-a-hash", "x")

    async def test_same_password_gets_different_salts(self) -> None:
        p = Passwords()
        assert await p.hash("same password") != await p.hash("same password")


class TestTokens:
    def test_issue_and_verify(self) -> None:
        t = Tokens(SECRET, ttl=60, admin_usernames="root, boss")
        assert t.verify(t.issue(123, "alice")) == Principal(123, "user")
        assert t.verify(t.issue(9, "boss")) == Principal(9, "admin")

    def test_claims(self) -> None:
        t = Tokens(SECRET, ttl=60)
        claims = jwt.decode(t.issue(5, "bob", now=1000), options={"verify_signature": False})
        assert claims == {"sub": "5", "iat": 1000, "exp": 1060, "role": "user"}

    def test_expired_token_is_refused(self) -> None:
        t = Tokens(SECRET, ttl=60)
        with pytest.raises(InvalidToken, match="expired"):
            t.verify(t.issue(5, "bob", now=int(time.time()) - 120))

    def test_cached_token_still_expires(self) -> None:
        t = Tokens(SECRET, ttl=60)
        token = t.issue(5, "bob")
        assert t.verify(token).user_id == 5
        principal, _ = t._seen[token]
        t._seen[token] = (principal, int(time.time()) - 1)  # as if its exp had passed since
        with pytest.raises(InvalidToken, match="expired"):
            t.verify(token)

    def test_forged_tokens_are_refused(self) -> None:
        t = Tokens(SECRET, ttl=60)
        now = int(time.time())
        claims = {"sub": "5", "iat": now, "exp": now + 60, "role": "admin"}
        forged = [
            Tokens(SECRET + "other", ttl=60).issue(5, "bob"),  # other key
            jwt.encode(claims, SECRET, algorithm="HS256"),  # the raw secret, not the derived key
            jwt.encode(claims, None, algorithm="none"),  # unsigned
            jwt.encode({"sub": "5", "iat": now}, derive_key(SECRET, "jwt/v1"), algorithm="HS256"),  # no exp
            jwt.encode({**claims, "sub": "abc"}, derive_key(SECRET, "jwt/v1"), algorithm="HS256"),  # bad sub
            "not.a.token",
            "",
        ]
        for token in forged:
            with pytest.raises(InvalidToken):
                t.verify(token)

    def test_tampered_payload_is_refused(self) -> None:
        t = Tokens(SECRET, ttl=60)
        head, payload, sig = t.issue(5, "bob").split(".")
        other_payload = t.issue(6, "eve").split(".")[1]
        with pytest.raises(InvalidToken):
            t.verify(f"{head}.{other_payload}.{sig}")
        assert payload != other_payload

    def test_cache_is_bounded(self) -> None:
        t = Tokens(SECRET, ttl=60, max_cached=3)
        for uid in range(1, 10):
            t.verify(t.issue(uid, f"u{uid}"))
        assert len(t._seen) <= 3
