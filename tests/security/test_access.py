"""Who gets in, and what leaks: tokens, passwords, ownership, the admin role, presigned URLs.

Against the real services (the API in-process, CQL, Redis, NATS, MinIO of ``clipstream stack up``).
Ownership of delete is also covered by tests/http/test_api_integration.py (test_only_the_creator_deletes).
Run holding the lock: ``flock /tmp/clipstream-e2e.lock .venv/bin/pytest tests/security/test_access.py``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import jwt
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from clipstream.config.settings import Settings
from clipstream.http.app import create_app
from clipstream.http.security import Tokens, derive_key
from clipstream.storage.objects import ObjectStore
from tests.http.conftest import unique_name

pytestmark = pytest.mark.integration

Client = AsyncTestClient[Litestar]
PASSWORD = "Sekrit-Pass-" + unique_name("pw")  # unique, so any occurrence in logs is a leak
ADMIN = unique_name("root")


@pytest.fixture(scope="module")
def app_settings(base_settings: Settings) -> Settings:
    return msgspec.structs.replace(base_settings, http=msgspec.structs.replace(base_settings.http, admin_usernames=ADMIN))


@pytest.fixture(scope="module")
async def client(schema: None, streams: None, app_settings: Settings) -> AsyncIterator[Client]:
    async with AsyncTestClient(app=create_app(app_settings)) as c:
        yield c


async def account(client: Client, username: str | None = None) -> tuple[int, dict[str, str]]:
    name = username or unique_name()
    r = await client.post("/v1/auth/register", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD})
    assert r.status_code == 201, r.text
    r = await client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return int(r.json()["user_id"]), {"Authorization": f"Bearer {r.json()['access_token']}"}


class TestTokens:
    async def test_a_token_past_its_exp_is_401_even_if_it_was_accepted_before(self, client: Client, app_settings: Settings) -> None:
        user_id, _ = await account(client)
        tokens = Tokens(app_settings.http.jwt_secret, app_settings.http.token_ttl)
        # Issued so that it expires two seconds from now; the API remembers verified tokens.
        token = tokens.issue(user_id, "x", now=int(time.time()) - app_settings.http.token_ttl + 2)
        h = {"Authorization": f"Bearer {token}"}
        assert (await client.get("/v1/users/me", headers=h)).status_code == 200
        await asyncio.sleep(3.1)
        r = await client.get("/v1/users/me", headers=h)
        assert r.status_code == 401 and r.json()["detail"] == "token expired"
        assert r.headers["www-authenticate"].startswith("Bearer")

    async def test_forged_tokens_are_401(self, client: Client, app_settings: Settings) -> None:
        user_id, good = await account(client)
        victim_id, _ = await account(client)
        now = int(time.time())
        admin_claims = {"sub": str(user_id), "iat": now, "exp": now + 600, "role": "admin"}
        head, _, sig = good["Authorization"].removeprefix("Bearer ").split(".")
        other_payload = jwt.encode({**admin_claims, "sub": str(victim_id), "role": "user"}, "x" * 32, algorithm="HS256").split(".")[1]
        forged = [
            jwt.encode(admin_claims, None, algorithm="none"),  # unsigned
            jwt.encode(admin_claims, app_settings.http.jwt_secret, algorithm="HS256"),  # the raw secret
            jwt.encode(admin_claims, derive_key(app_settings.http.jwt_secret, "cursor/feed/v1"), algorithm="HS256"),
            jwt.encode(admin_claims, "a-guess-at-the-secret-of-some-length", algorithm="HS256"),
            f"{head}.{other_payload}.{sig}",  # someone else's id under a valid signature
            "Bearer " + good["Authorization"],
        ]
        for token in forged:
            for path in ("/v1/users/me", "/v1/admin/actors"):
                r = await client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 401, (token, path, r.text)
        assert (await client.get("/v1/users/me", headers=good)).json()["user_id"] == str(user_id)


class TestPasswords:
    async def test_never_logged_nor_returned(self, client: Client, capfd: pytest.CaptureFixture[str]) -> None:
        capfd.readouterr()
        name = unique_name()
        bodies = []
        for body in (
            {"username": name, "email": f"{name}@example.com", "password": PASSWORD},  # 201
            {"username": name, "email": f"x{name}@example.com", "password": PASSWORD},  # 409 taken
            {"username": name, "email": "not-an-email", "password": PASSWORD},  # 400
            {"username": name, "email": f"{name}@example.com", "password": PASSWORD, "extra": PASSWORD},  # 400
        ):
            bodies.append(await client.post("/v1/auth/register", json=body))
        for password in (PASSWORD, PASSWORD + "-wrong"):
            bodies.append(await client.post("/v1/auth/login", json={"username": name, "password": password}))
        bodies.append(await client.post("/v1/auth/login", json={"username": unique_name(), "password": PASSWORD}))
        assert [r.status_code for r in bodies] == [201, 409, 400, 400, 200, 401, 401]
        for r in bodies:
            assert PASSWORD not in r.text and "$argon2" not in r.text and "password_hash" not in r.text
        out, err = capfd.readouterr()
        assert PASSWORD not in out + err and "$argon2" not in out + err


class TestOwnership:
    async def test_only_the_creator_completes_or_deletes_an_upload(self, client: Client) -> None:
        _, author = await account(client)
        _, other = await account(client)
        r = await client.post("/v1/videos/upload-url", json={"file_size_bytes": 1000, "file_format": "mp4"}, headers=author)
        assert r.status_code == 200, r.text
        vid = r.json()["video_id"]
        for call in (client.post(f"/v1/videos/{vid}/complete", headers=other), client.delete(f"/v1/videos/{vid}", headers=other)):
            r = await call
            assert r.status_code == 403 and "only the creator" in r.json()["detail"]
        # An unready video is not visible to others at all.
        assert (await client.get(f"/v1/videos/{vid}", headers=other)).status_code == 404
        assert (await client.get(f"/v1/videos/{vid}", headers=author)).json()["status"] == "uploading"
        assert (await client.delete(f"/v1/videos/{vid}", headers=author)).status_code == 204


class TestAdminRole:
    async def test_admin_endpoints_need_the_admin_role(self, client: Client) -> None:
        _, user = await account(client)
        assert (await client.get("/v1/admin/actors")).status_code == 401
        r = await client.get("/v1/admin/actors", headers=user)
        assert r.status_code == 403, r.text
        _, admin = await account(client, ADMIN)
        r = await client.get("/v1/admin/actors", headers=admin)
        assert r.status_code not in (401, 403), r.text  # 200, or 503 when no node answers

    async def test_the_role_comes_from_the_server_not_the_request(self, client: Client) -> None:
        name = unique_name()
        r = await client.post(
            "/v1/auth/register",
            json={"username": name, "email": f"{name}@example.com", "password": PASSWORD, "role": "admin"},
        )
        assert r.status_code == 400 and "role" in r.text


class TestPresignedUploads:
    async def _upload_url(self, client: Client) -> str:
        _, h = await account(client)
        r = await client.post("/v1/videos/upload-url", json={"file_size_bytes": 11, "file_format": "mp4"}, headers=h)
        assert r.status_code == 200, r.text
        return str(r.json()["upload_url"])

    async def test_a_put_url_is_for_one_object_key(self, client: Client) -> None:
        url = await self._upload_url(client)
        parts = urlsplit(url)
        bucket, _, key = parts.path.lstrip("/").partition("/")
        user_dir = key.rsplit("/", 1)[0]
        elsewhere = [
            f"/{bucket}/{user_dir}/another-video.mp4",  # same user, another key
            f"/{bucket}/{key}.bak",
            f"/{bucket}/1/{key.rsplit('/', 1)[1]}",  # another user's folder
            f"/media/{key}",  # another bucket
        ]
        async with httpx.AsyncClient(timeout=10) as http:
            for path in elsewhere:
                r = await http.put(urlunsplit(parts._replace(path=path)), content=b"not my file")
                assert r.status_code == 403, (path, r.status_code, r.text[:200])
            r = await http.put(url, content=b"hello video")
            assert r.status_code == 200, r.text[:300]

    async def test_a_put_url_expires(self, client: Client, app_settings: Settings) -> None:
        # A store signing with a 1-second lifetime (settings require >= 60 s; waiting that long is
        # pointless: MinIO checks X-Amz-Expires the same way whatever its value).
        store = ObjectStore.from_settings(msgspec.structs.replace(app_settings.minio, upload_url_ttl=1))
        url = store.upload_url(f"expiry-test/{unique_name()}.mp4")
        assert "X-Amz-Expires=1" in url
        await asyncio.sleep(2.5)
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.put(url, content=b"too late")
        assert r.status_code == 403 and "expired" in r.text.lower(), r.text[:300]


def test_no_hard_coded_credentials_outside_settings_defaults() -> None:
    """The local default secrets appear in config/settings.py and compose.yaml (as documented
    fallbacks) and nowhere else in the source; no other literal looks like a credential."""
    import re
    from pathlib import Path

    from clipstream.config.settings import CqlSettings, HttpSettings, MinioSettings

    root = Path(__file__).resolve().parents[2]
    defaults = {MinioSettings().secret_key, HttpSettings().jwt_secret}
    assign = re.compile(r"""(secret|password|passwd|api_key|access_key|token)\w*\s*[:=]\s*["'][^"']{8,}["']""", re.I)
    allowed = {root / "config" / "settings.py", root / "compose.yaml"}
    # Not credentials of the system: the password `clipstream demo` gives the sample users it
    # creates in a local system, printed for the person running the demo.
    known = {"cli/demo.py": 'PASSWORD = "clipstream-demo"'}
    hits = []
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if rel.parts[0] in (".venv", ".git", "tests", "clipstream.egg-info") or not path.is_file():
            continue
        if path.suffix not in (".py", ".yaml", ".yml", ".toml", ".sh", ".cfg", ".ini", ".env", "") or path in allowed:
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{rel}: default secret" for secret in defaults if secret in text]
        hits += [f"{rel}: {m.group(0)}" for m in assign.finditer(text) if known.get(str(rel)) != m.group(0)]
    assert not hits, hits
    assert CqlSettings().password == ""  # no CQL credential at all by default
