"""The operator's endpoints at the handler level: who may see the tree, and the static page."""

from __future__ import annotations

from tests.http.test_app_unit import make_client, token


async def test_actors_without_token_is_401() -> None:
    async with make_client() as client:
        assert (await client.get("/v1/admin/actors")).status_code == 401


async def test_actors_for_a_non_admin_is_403_before_any_io() -> None:
    async with make_client() as client:  # node_status is None: reaching it would fail the test
        r = await client.get("/v1/admin/actors", headers=token(username="alice"))
        assert r.status_code == 403


async def test_page_is_static_with_a_strict_policy() -> None:
    async with make_client() as client:
        r = await client.get("/admin/actors")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in r.headers["content-security-policy"]
        assert r.headers["cache-control"] == "no-store"
