"""The Litestar application: routes, auth, OpenAPI and the error edge, made by one factory.

``create_app`` is what granian calls in each worker (``clipstream.http.app:create_app``, factory
mode); connections are opened in the app's lifespan, so nothing touches the network at import.
"""

from __future__ import annotations

import contextlib
import gc
import sys
from typing import AsyncContextManager, AsyncIterator, Callable

from litestar import Litestar, Router, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp

from clipstream import __version__
from clipstream.bus.tasks import stop_task
from clipstream.config.logs import configure_logging
from clipstream.config.settings import Settings, get_settings
from clipstream.http.admin import ADMIN_HANDLERS
from clipstream.http.auth import AUTH_HANDLERS, BearerAuthMiddleware, current_user
from clipstream.http.bodies import JsonBodyMiddleware
from clipstream.http.bootstrap import Security, Services, build_security, open_services
from clipstream.http.errors import exception_handlers
from clipstream.http.fastpath import FastPaths
from clipstream.http.feed import FEED_HANDLERS
from clipstream.http.metrics import METRICS_HANDLERS, RequestMetricsMiddleware, watch_worker
from clipstream.http.openapi import StrictStructSchemaPlugin
from clipstream.http.ratelimit import RateLimiter, RateLimitMiddleware
from clipstream.http.schemas import StatusResponse
from clipstream.http.uploads import UPLOAD_HANDLERS
from clipstream.http.users import USER_HANDLERS
from clipstream.http.videos import VIDEO_HANDLERS
from clipstream.http.web import SWAGGER_ASSETS, web_handlers

__all__ = ["ServicesFactory", "create_app", "create_server_app"]

ServicesFactory = Callable[[Settings, Security], AsyncContextManager[Services]]
"""Opens a worker's services; tests pass their own to run handlers without some outside system."""

_SCHEMA_PATH = "/schema"
#: seconds a thread of an API worker may hold the GIL while another waits for it
GIL_SWITCH_INTERVAL = 0.0005


@get("/health", exclude_from_auth=True, tags=["ops"])
async def health() -> StatusResponse:
    """Liveness: the worker answers (touches no backing service, so it is safe to poll often)."""
    return StatusResponse(status="ok")


def _services(state: State) -> Services:
    return state.services  # type: ignore[no-any-return]


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="clipstream API",
        version=__version__,
        description="Short-video platform: uploads, the For You feed, likes, follows and profiles. "
        "Ids are decimal strings. Authenticate with `Authorization: Bearer <access_token>` from "
        "`POST /v1/auth/login`.",
        path=_SCHEMA_PATH,
        # /schema serves Swagger UI (interactive), /schema/openapi.json and .yaml the document.
        # Swagger UI's files come from the installed swagger-ui-bundle-v2 package (http/web.py),
        # not Litestar's default CDN: the page works on a machine without internet.
        render_plugins=[
            SwaggerRenderPlugin(
                path=["/", "/swagger"],
                js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER_ASSETS}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' type='image/png' href='{SWAGGER_ASSETS}/favicon-32x32.png'>",
            ),
            JsonRenderPlugin(),
            YamlRenderPlugin(),
        ],
        components=Components(
            security_schemes={"BearerAuth": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}
        ),
        use_handler_docstrings=True,
    )


def create_app(settings: Settings | None = None, services: ServicesFactory | None = None) -> Litestar:
    """Build the API; ``services`` defaults to connecting to the real backing services."""
    configure_logging()  # a worker spawned (not forked) by granian has not inherited it
    settings = settings or get_settings()
    security = build_security(settings)
    open_fn: ServicesFactory = services or open_services
    limiter = RateLimiter(settings.http.rate_limit_prefix, settings.http.rate_limit_sync)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with open_fn(settings, security) as svc, limiter.running(svc.redis):
            app.state.services = svc
            # Everything built so far (the app, its routes and schema, the drivers) lives as long
            # as the worker: out of the cyclic collector's sight, whose full passes over it
            # stalled every request of the worker for their length.
            gc.freeze()
            watcher = watch_worker()
            try:
                yield
            finally:
                await stop_task(watcher)

    return Litestar(
        route_handlers=[
            health,
            *web_handlers(settings.minio),
            *AUTH_HANDLERS,
            *METRICS_HANDLERS,
            # Everything else needs the bearer token; the router says so in the OpenAPI document.
            Router(
                "/",
                route_handlers=[*USER_HANDLERS, *UPLOAD_HANDLERS, *VIDEO_HANDLERS, *FEED_HANDLERS, *ADMIN_HANDLERS],
                security=[{"BearerAuth": []}],
            ),
        ],
        dependencies={
            "svc": Provide(_services, sync_to_thread=False),
            "me": Provide(current_user, sync_to_thread=False),
        },
        # Metrics first: they time the checks too, and count their 401s and 429s. The per-IP limit
        # comes before the token check (it also bounds requests with bad tokens), the per-user one
        # after it (it needs the user); a body's type is checked once the caller is known.
        middleware=[
            RequestMetricsMiddleware,
            RateLimitMiddleware(limiter, settings.http, by="ip"),
            DefineMiddleware(BearerAuthMiddleware, tokens=security.tokens, exclude=[f"^{_SCHEMA_PATH}"]),
            RateLimitMiddleware(limiter, settings.http, by="user"),
            JsonBodyMiddleware(),
        ],
        lifespan=[lifespan],
        state=State({"rate_limiter": limiter}),
        exception_handlers=exception_handlers(settings.http.max_body_bytes),
        openapi_config=_openapi(),
        plugins=[StrictStructSchemaPlugin()],
        request_max_body_size=settings.http.max_body_bytes,  # larger bodies: 413
        # Logging is configured once per process (clipstream.config.logs); Litestar's default
        # config would put its own format on the root logger. 500s are logged by the error edge.
        logging_config=None,
        debug=False,
    )


def create_server_app(settings: Settings | None = None) -> ASGIApp:
    """What granian serves: the app, behind the fast paths of its hot routes unless turned off."""
    settings = settings or get_settings()
    # granian's own threads take the GIL to hand requests to this worker's event loop and to take
    # its answers: handing it over every 5 ms (CPython's default) made requests wait for it.
    # Measured, alternating runs: feed 1,720 / 1,921 -> 2,282 / 2,372 req/s, p99 ~205 -> ~105 ms.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    app = create_app(settings)
    if not settings.http.fast_paths:
        return app
    return FastPaths(app, app.state.rate_limiter, settings.http)
