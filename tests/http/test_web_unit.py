"""The watch page and the offline API docs, served by the app from installed packages (no services)."""

from __future__ import annotations

import re
from typing import AsyncIterator

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from clipstream.config.settings import MinioSettings, Settings
from clipstream.http.app import create_app
from clipstream.http.web import STATIC_DIR, storage_origins
from tests.http.conftest import fake_services

SETTINGS = Settings(minio=MinioSettings(public_endpoint="media.example.test:9000", public_base_url="https://cdn.example.test/media"))


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient[Litestar]]:
    async with AsyncTestClient(app=create_app(SETTINGS, services=fake_services(SETTINGS))) as c:
        yield c


class TestWatchPage:
    async def test_the_page_is_at_the_root_without_a_token(self, client: AsyncTestClient[Litestar]) -> None:
        r = await client.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert '<script type="module" src="/web/app.js">' in r.text

    async def test_csp_allows_this_origin_and_the_object_store_only(self, client: AsyncTestClient[Litestar]) -> None:
        csp = (await client.get("/")).headers["content-security-policy"]
        assert "script-src 'self';" in csp and "'unsafe-inline'" not in csp
        media = re.search(r"media-src ([^;]+);", csp).group(1).split()  # type: ignore[union-attr]
        assert media == ["http://media.example.test:9000", "https://cdn.example.test"]
        assert "connect-src 'self' http://media.example.test:9000" in csp

    @pytest.mark.parametrize("name", ["app.js", "api.js", "feed.js", "abr.js", "app.css"])
    async def test_every_file_the_page_loads_is_served(self, client: AsyncTestClient[Litestar], name: str) -> None:
        r = await client.get(f"/web/{name}")
        assert r.status_code == 200 and r.content == (STATIC_DIR / name).read_bytes()
        assert ("javascript" if name.endswith(".js") else "css") in r.headers["content-type"]

    async def test_the_modules_import_only_files_that_exist(self) -> None:
        for js in STATIC_DIR.glob("*.js"):
            for target in re.findall(r'from "\./([^"]+)"', js.read_text()):
                assert (STATIC_DIR / target).is_file(), (js.name, target)

    async def test_no_file_of_the_page_names_another_host(self) -> None:
        for f in STATIC_DIR.iterdir():
            assert not re.search(r"https?://", f.read_text()), f.name

    def test_storage_origin_follows_secure(self) -> None:
        assert storage_origins(MinioSettings(endpoint="s3:443", secure=True)) == ["https://s3:443"]


class TestOfflineDocs:
    async def test_swagger_ui_loads_its_assets_from_this_server(self, client: AsyncTestClient[Litestar]) -> None:
        page = await client.get("/schema")
        assert page.status_code == 200
        urls = re.findall(r'(?:src|href)=["\']([^"\']+)["\']', page.text)
        assert urls and all(u.startswith("/schema/assets/") for u in urls), urls
        for url in urls:
            asset = await client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100, url

    async def test_the_swagger_bundle_reads_openapi_3_1(self, client: AsyncTestClient[Litestar]) -> None:
        # Litestar writes OpenAPI 3.1; Swagger UI renders it only from 5.0 on (4.x shows an error).
        assert (await client.get("/schema/openapi.json")).json()["openapi"].startswith("3.1")
        bundle = (await client.get("/schema/assets/swagger-ui-bundle.js")).text
        assert "OpenAPI 3.1" in bundle or "openapi31" in bundle.lower()
