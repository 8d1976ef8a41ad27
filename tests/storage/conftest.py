"""Fixtures of the storage tests."""

from __future__ import annotations

from typing import Any

import pytest
from cassandra.query import BatchStatement

from clipstream.storage.cql import Cql


@pytest.fixture
def sent(cql: Cql, monkeypatch) -> list[Any]:
    """Every request the session sends during the test."""
    requests: list[Any] = []
    execute_async = cql.session.execute_async

    def spy(request: Any, *args: Any, **kwargs: Any) -> Any:
        requests.append(request)
        return execute_async(request, *args, **kwargs)

    monkeypatch.setattr(cql.session, "execute_async", spy)
    return requests


def rows_of(request: Any) -> list[tuple[Any, ...]]:
    """The serialized values of each row of a request (a batch or one bound statement)."""
    if isinstance(request, BatchStatement):
        return [tuple(params) for _, _, params in request._statements_and_parameters]
    return [tuple(request.values)]
