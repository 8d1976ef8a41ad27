"""Sessions against the real services: login -> refresh (rotated) -> reuse and logout are 401s,
tokens stored hashed with a TTL in Cassandra (migration 0004)."""

from __future__ import annotations

import hashlib
import hmac
from typing import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from clipstream.config.settings import Settings
from clipstream.http.app import create_app
from clipstream.http.security import derive_key
from clipstream.storage.cql import connect_cql
from tests.http.conftest import unique_name

pytestmark = pytest.mark.integration

Client = AsyncTestClient[Litestar]
PASSWORD = "pass-word-1"


@pytest.fixture(scope="module")
async def client(schema: None, streams: None, base_settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(base_settings)) as c:
        yield c


async def signed_in(client: Client) -> dict:
    name = unique_name()
    r = await client.post("/v1/auth/register", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refresh_token"] and body["refresh_expires_in"] > 0 and body["username"] == name
    return body


async def refresh(client: Client, token: str):  # noqa: ANN201
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


async def test_refresh_rotates_and_the_new_access_token_works(client: Client) -> None:
    login = await signed_in(client)
    r = await refresh(client, login["refresh_token"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == login["user_id"] and body["refresh_token"] != login["refresh_token"]
    me = await client.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["user_id"] == login["user_id"]
    again = await refresh(client, body["refresh_token"])
    assert again.status_code == 200, again.text


async def test_reuse_of_a_rotated_token_revokes_the_family(client: Client) -> None:
    login = await signed_in(client)
    rotated = (await refresh(client, login["refresh_token"])).json()["refresh_token"]
    reused = await refresh(client, login["refresh_token"])
    assert reused.status_code == 401 and "already used" in reused.json()["detail"]
    successor = await refresh(client, rotated)  # the family is signed out
    assert successor.status_code == 401 and "signed out" in successor.json()["detail"]


async def test_logout_revokes(client: Client) -> None:
    login = await signed_in(client)
    out = await client.post("/v1/auth/logout", json={"refresh_token": login["refresh_token"]})
    assert out.status_code == 204, out.text
    r = await refresh(client, login["refresh_token"])
    assert r.status_code == 401


@pytest.mark.parametrize("body", [{}, {"refresh_token": ""}, {"refresh_token": "a b"}, {"refresh_token": "x" * 200},
                                  {"refresh_token": "abc", "extra": 1}, {"refresh_token": 5}])
async def test_bad_bodies_are_400s(client: Client, body: dict) -> None:
    for path in ("/v1/auth/refresh", "/v1/auth/logout"):
        r = await client.post(path, json=body)
        assert r.status_code == 400, (path, body, r.text)


async def test_unknown_tokens_are_401s(client: Client) -> None:
    for path in ("/v1/auth/refresh", "/v1/auth/logout"):
        r = await client.post(path, json={"refresh_token": "A" * 43})
        assert r.status_code == 401, r.text


async def test_tokens_are_stored_hashed_with_a_ttl(client: Client, base_settings: Settings) -> None:
    login = await signed_in(client)
    token = login["refresh_token"]
    digest = hmac.new(derive_key(base_settings.http.jwt_secret, "refresh/v1"), token.encode(), hashlib.sha256).digest()
    cql = connect_cql(base_settings.cql, base_settings.cql.keyspace)
    try:
        rows = cql.execute_sync("SELECT user_id, TTL(username) AS ttl FROM refresh_tokens WHERE token_hash = %s",
                                (digest,))
        assert len(rows) == 1 and str(rows[0].user_id) == login["user_id"]
        assert 0 < rows[0].ttl <= base_settings.http.refresh_ttl
        # after a refresh the spent row keeps a TTL too (the claim rewrites a cell)
        assert (await refresh(client, token)).status_code == 200
        used = cql.execute_sync("SELECT used, TTL(used) AS ttl FROM refresh_tokens WHERE token_hash = %s", (digest,))
        assert used[0].used is True and 0 < used[0].ttl <= base_settings.http.refresh_ttl
    finally:
        cql.close()
