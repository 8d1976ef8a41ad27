"""The security suite runs the API like tests/http does: the same settings and stack fixtures."""

from tests.http.conftest import base_settings, live_stack, schema, streams  # noqa: F401 (fixtures)
