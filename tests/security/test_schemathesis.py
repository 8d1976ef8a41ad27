"""schemathesis against the API's own OpenAPI document, in-process, with the real services.

Every operation of ``/schema/openapi.json`` gets generated requests (valid and invalid bodies,
queries, path ids) with a valid bearer token: a user's, or an admin's for ``/v1/admin/*``. Each
answer must be no 5xx, a status the document lists for that operation, and a body that matches the
documented schema (schemathesis' default checks). A stand-in feed shard answers the feed's NATS
requests (no actor node is part of this suite). At least MIN_TOTAL_CASES cases are tried in all.

Run it holding the lock: ``flock /tmp/clipstream-e2e.lock .venv/bin/pytest tests/security/test_schemathesis.py``.
"""

from __future__ import annotations

from typing import Any, Iterator

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.python import asgi

from clipstream.bus.rpc import FeedPage, FeedQuery
from clipstream.config.settings import Settings
from clipstream.http.app import create_app
from tests.http.conftest import unique_name, with_nats
from tests.http.test_api_integration import feed_shard

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 90
MIN_TOTAL_CASES = 1_000

# Unknown query parameters are ignored, as HTTP APIs usually do (cache busters, tracking tags);
# OpenAPI cannot say "no other query parameters", so schemathesis is told not to send them.
# Unknown JSON body fields are a different matter: refused with 400 and documented as such.
CONFIG = SchemathesisConfig.from_dict({"generation": {"allow-extra-parameters": False}})

# Checks left out for one operation, each with the reason.
EXCLUDED: dict[str, list[Any]] = {
    # The accepted formats and the largest size are settings (the document says so in the field
    # descriptions); a schema-valid body outside them is a 400 naming the limit, by design.
    "POST /v1/videos/upload-url": [positive_data_acceptance],
    # A hashtag is Unicode letters, digits and _; JSON Schema has no pattern for that which Python
    # reads the same way (its \w is ASCII), so the rule is in the description and a schema-valid
    # tag with other characters is a 400 naming it, by design.
    "GET /v1/hashtags/{tag}/videos": [positive_data_acceptance],
}

TOKENS: dict[str, str] = {}


def _page(user: int, query: FeedQuery) -> FeedPage:
    page = query.page or 1
    return FeedPage(page=page, video_ids=[], next_page=page + 1)


def _account(client: Any, username: str) -> str:
    body = {"username": username, "email": f"{username}@example.com", "password": "pass-word-1"}
    r = client.post("/v1/auth/register", json=body)
    assert r.status_code == 201, r.text
    r = client.post("/v1/auth/login", json={"username": username, "password": "pass-word-1"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture(scope="session")
def api_schema(schema: None, streams: None, base_settings: Settings) -> Iterator[Any]:
    admin = unique_name("admin")
    # A silent feed would cost the full NATS timeout per case; the stand-in answers at once.
    app_settings = with_nats(base_settings, timeout=2.0)
    app_settings = msgspec.structs.replace(
        app_settings, http=msgspec.structs.replace(app_settings.http, admin_usernames=admin)
    )
    app = create_app(app_settings)
    with feed_shard(app_settings.nats.url, app_settings.nats.subject_prefix, _page):
        try:
            loaded = schemathesis.openapi.from_asgi("/schema/openapi.json", app, config=CONFIG)  # starts the lifespan
            client = asgi.get_client(app)
            TOKENS["user"] = _account(client, unique_name())
            TOKENS["admin"] = _account(client, admin)
            yield loaded
        finally:
            asgi.shutdown_lifespans()


def _run_operation(operation: Any, examples: int) -> tuple[int, str | None]:
    """Cases tried on one operation, and the failure schemathesis reports (None: all passed)."""
    excluded = EXCLUDED.get(f"{operation.method.upper()} {operation.path}", [])
    token = TOKENS["admin" if operation.path.startswith("/v1/admin/") else "user"]
    # Valid requests and invalid ones (wrong types, missing fields, out-of-range values).
    cases = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)
    tried = 0

    @given(case=cases)
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        nonlocal tried
        tried += 1
        skip = excluded
        if case.query and case.query.get("cursor"):
            # A cursor is an HMAC-signed token from a previous page: a generated one is a forgery,
            # and a forgery is a 400 by design, schema-valid or not.
            skip = [*excluded, positive_data_acceptance]
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, excluded_checks=skip)

    try:
        check()
    except (Exception, BaseExceptionGroup) as exc:  # what failed, grouped, with a reproducing request
        return tried, f"{exc}"[:4000]
    return tried, None


def test_api_conforms_to_its_schema(api_schema: Any) -> None:
    failures: dict[str, str] = {}
    cases: dict[str, int] = {}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        cases[name], failure = _run_operation(operation, EXAMPLES_PER_OPERATION)
        if failure is not None:
            failures[name] = failure
    total = sum(cases.values())
    print(f"\nschemathesis: {total} cases over {len(cases)} operations: {cases}")
    assert not failures, "\n\n".join(f"== {name}\n{text}" for name, text in failures.items())
    assert total >= MIN_TOTAL_CASES, cases
