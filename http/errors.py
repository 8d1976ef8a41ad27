"""The one place where errors of the layers below become HTTP answers.

Handlers raise storage errors (NotFound, Conflict, StorageUnavailable), BusUnavailable, or Litestar's
HTTP exceptions; this module maps the former onto the latter so every error body has the same shape
(``{"status_code", "detail"}``) and an outage answers 503 with Retry-After instead of a 500.
"""

from __future__ import annotations

from typing import Any, Callable

import msgspec
import redis.exceptions
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.exceptions.responses import create_exception_response
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import (
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from clipstream.bus.publisher import BusUnavailable
from clipstream.http.cursors import InvalidCursor
from clipstream.storage.errors import Conflict, NotFound, StorageUnavailable

__all__ = ["RETRY_AFTER_SECONDS", "ErrorBody", "ServiceUnavailable", "errors", "exception_handlers", "http_exception_for",
           "parse_id"]

log = structlog.get_logger("clipstream.http")

RETRY_AFTER_SECONDS = 2
_MAX_ID = 2**63 - 1


class ErrorBody(msgspec.Struct, frozen=True):
    """Body of every error answer (Litestar's shape)."""

    status_code: int
    detail: str
    extra: dict[str, Any] | list[Any] | None = None


_MEANING = {
    400: "invalid request (the detail says which field and why)",
    401: "missing, invalid or expired bearer token",
    403: "not allowed for this user",
    404: "no such resource (or not visible to this user)",
    409: "conflicts with the current state",
    413: "request body too large",
    415: "the request body is not JSON (send Content-Type: application/json)",
    429: "rate limit exceeded; retry after Retry-After seconds",
    503: "a backing service is unavailable; retry after Retry-After seconds",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error answers a handler gives (all share :class:`ErrorBody`).

    429 is always listed: every route that documents its errors is behind the rate limits.
    """
    return {
        code: ResponseSpec(data_container=ErrorBody, description=_MEANING[code], generate_examples=False)
        for code in sorted({*codes, 429})
    }


class ServiceUnavailable(HTTPException):
    """503: a backing service is down or slow; the client should retry after a pause."""

    status_code = HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, detail: str = "service temporarily unavailable, retry later") -> None:
        super().__init__(detail=detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def parse_id(raw: str, what: str) -> int:
    """A path id from its decimal string; anything else is simply a resource that does not exist."""
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
        raise NotFoundException(f"{what} not found")
    value = int(raw)
    if not 0 < value <= _MAX_ID:
        raise NotFoundException(f"{what} not found")
    return value


def _as(exc_factory: Callable[[Exception], HTTPException]) -> Callable[[Request[Any, Any, Any], Exception], Response[Any]]:
    def handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
        return create_exception_response(request, exc_factory(exc))

    return handler


def _not_found(exc: Exception) -> HTTPException:
    # Storage messages name keys ("video 123"); the public message stays generic.
    return NotFoundException("not found")


def _conflict(exc: Exception) -> HTTPException:
    return HTTPException(status_code=HTTP_409_CONFLICT, detail=str(exc))


def _unavailable(exc: Exception) -> HTTPException:
    log.warning("backing service unavailable", error=repr(exc))
    return ServiceUnavailable()


def _invalid_cursor(exc: Exception) -> HTTPException:
    return HTTPException(status_code=400, detail="invalid cursor")


def _not_utf8(exc: Exception) -> HTTPException:
    # msgspec decodes JSON strings as UTF-8 and raises this for bytes that are not (e.g. "\xff").
    return HTTPException(status_code=400, detail="request body is not valid UTF-8")


def _too_deep(exc: Exception) -> HTTPException:
    # msgspec gives up on deeply nested JSON (e.g. 1,000 "[") with a RecursionError: bad input.
    if "deserializing" in str(exc):
        return HTTPException(status_code=400, detail="request body is nested too deeply")
    return _internal(exc)


def _internal(exc: Exception) -> HTTPException:
    # A bug: log it with its traceback, tell the client nothing about the internals.
    log.error("unhandled error", exc_info=exc)
    return HTTPException(status_code=HTTP_500_INTERNAL_SERVER_ERROR, detail="internal server error")


def _factories() -> dict[type[Exception], Callable[[Exception], HTTPException]]:
    """Exception class -> its HTTP answer, looked up along an exception's MRO."""
    factories: dict[type[Exception], Callable[[Exception], HTTPException]] = {
        NotFound: _not_found,
        Conflict: _conflict,
        StorageUnavailable: _unavailable,
        BusUnavailable: _unavailable,
        # The storage layer does not wrap redis-py's errors yet: an outage must still be a 503.
        redis.exceptions.ConnectionError: _unavailable,
        redis.exceptions.TimeoutError: _unavailable,
        InvalidCursor: _invalid_cursor,
        UnicodeDecodeError: _not_utf8,
        RecursionError: _too_deep,
    }
    try:  # the CQL driver raises these outside Cql.execute (e.g. preparing a statement)
        from cassandra import DriverException, OperationTimedOut, RequestExecutionException
        from cassandra.cluster import NoHostAvailable

        for cls in (NoHostAvailable, OperationTimedOut, RequestExecutionException, DriverException):
            factories[cls] = _unavailable
    except ImportError:  # pragma: no cover - the driver is a dependency
        pass
    return factories


_FACTORIES = _factories()


def http_exception_for(exc: Exception) -> HTTPException:
    """The HTTP answer to an exception raised below the edge, as the app's handlers give it
    (for code answering outside Litestar: :mod:`clipstream.http.fastpath`)."""
    for cls in type(exc).__mro__:
        factory = _FACTORIES.get(cls)
        if factory is not None:
            return factory(exc)
    return _internal(exc)


def exception_handlers(
    max_body_bytes: int | None = None,
) -> dict[type[Exception] | int, Callable[[Request[Any, Any, Any], Exception], Response[Any]]]:
    """Handlers for Litestar's ``exception_handlers``: looked up along the exception's MRO.

    ``max_body_bytes``: the body limit, named in the 413 answer so a client knows what fits.
    """
    handlers: dict[type[Exception] | int, Any] = {cls: _as(factory) for cls, factory in _FACTORIES.items()}
    handlers[HTTP_500_INTERNAL_SERVER_ERROR] = _as(_internal)
    if max_body_bytes is not None:
        too_large = HTTPException(
            status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            detail=f"request body too large: the limit is {max_body_bytes} bytes",
        )
        handlers[HTTP_413_REQUEST_ENTITY_TOO_LARGE] = _as(lambda exc: too_large)
    return handlers
