"""Request bodies must be JSON: any other (or no) Content-Type on a body is refused with 415.

Litestar decodes a ``data`` parameter as JSON whatever the request says it is, so without this a
form or a text body reached the JSON decoder and came back as a confusing "JSON is malformed".
Every body this API accepts is JSON; only routes that take a body (a ``data`` parameter) are
checked, so a view or an upload's "complete" needs no Content-Type.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.middleware import ASGIMiddleware
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE
from litestar.types import ASGIApp, Receive, Scope, Send

__all__ = ["JsonBodyMiddleware", "is_json"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_json(content_type: bytes) -> bool:
    """``application/json`` or ``application/<anything>+json``, parameters (charset) ignored."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


class JsonBodyMiddleware(ASGIMiddleware):
    """415 for a request that carries a body which does not say it is JSON."""

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        if scope["method"] in _BODY_METHODS and "data" in scope["route_handler"].parsed_fn_signature.parameters:
            has_body = False
            content_type = b""
            for name, value in scope["headers"]:
                if name == b"content-length":
                    has_body = has_body or value.strip() not in (b"0", b"")
                elif name == b"transfer-encoding":
                    has_body = True
                elif name == b"content-type":
                    content_type = value
            if has_body and not is_json(content_type):
                raise HTTPException(
                    status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                    detail="request bodies must be JSON: send Content-Type: application/json",
                )
        await next_app(scope, receive, send)
