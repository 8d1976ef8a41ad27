"""The watch page and the API docs' assets, served by the API from installed packages (no CDN).

* ``/``: the web client (``http/static/``, package data): plain HTML, CSS and JavaScript modules,
  no build step. It is static, so it is served without a token; its scripts call the public API
  like any client. A Content-Security-Policy allows scripts and styles of this origin only, media
  and thumbnails from the object store, and fetches to this origin and the store (the browser's
  PUT of an upload goes straight to the presigned URL).
* ``/schema/assets/``: Swagger UI's files from the ``swagger-ui-bundle-v2`` package, which the
  ``/schema`` page loads instead of a CDN.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.router import Router
from litestar.static_files import create_static_files_router

from clipstream.config.settings import MinioSettings

__all__ = ["STATIC_DIR", "SWAGGER_ASSETS", "page_headers", "storage_origins", "swagger_assets_dir", "web_handlers"]

STATIC_DIR = Path(__file__).with_name("static")
#: where the /schema page finds Swagger UI's files
SWAGGER_ASSETS = "/schema/assets"
_WEB_ASSETS = "/web"


def swagger_assets_dir() -> Path:
    """The Swagger UI distribution inside the installed ``swagger_ui_bundle`` package."""
    import swagger_ui_bundle

    return Path(swagger_ui_bundle.swagger_ui_path)


def storage_origins(m: MinioSettings) -> list[str]:
    """The origins of the URLs the page is handed: presigned URLs of the public endpoint, and the
    media bucket's public base URL when one is set."""
    scheme = "https" if m.secure else "http"
    origins = [f"{scheme}://{m.public_endpoint or m.endpoint}"]
    if m.public_base_url:
        parts = urlsplit(m.public_base_url)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


def page_headers(m: MinioSettings) -> dict[str, str]:
    store = " ".join(storage_origins(m))
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; "
            f"img-src 'self' data: {store}; media-src {store}; connect-src 'self' {store}; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def web_handlers(minio: MinioSettings) -> list[HTTPRouteHandler | Router]:
    """The page at ``/``, its files under ``/web/``, and Swagger UI's under ``/schema/assets/``."""
    html = (STATIC_DIR / "index.html").read_bytes()
    headers = page_headers(minio)

    @get("/", exclude_from_auth=True, include_in_schema=False, media_type="text/html")
    async def watch_page() -> Response[bytes]:
        """The web client."""
        return Response(html, media_type="text/html; charset=utf-8", headers=headers)

    return [
        watch_page,
        create_static_files_router(_WEB_ASSETS, directories=[STATIC_DIR], include_in_schema=False,
                                   opt={"exclude_from_auth": True}, name="web"),
        create_static_files_router(SWAGGER_ASSETS, directories=[swagger_assets_dir()], include_in_schema=False,
                                   opt={"exclude_from_auth": True}, name="swagger-assets"),
    ]
