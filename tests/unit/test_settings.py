"""Settings: typed, from CLIPSTREAM_* variables, errors naming the variable."""

from __future__ import annotations

import pytest

from clipstream.config import SettingsError, env_variables, load_settings


def test_defaults_are_the_local_stack() -> None:
    s = load_settings({})
    assert s.redis.url.startswith("redis://127.0.0.1") and s.cql.port == 9042 and s.minio.endpoint == "127.0.0.1:9000"


def test_values_are_converted_from_strings() -> None:
    s = load_settings({"CLIPSTREAM_CQL_PORT": "9043", "CLIPSTREAM_MINIO_SECURE": "true",
                       "CLIPSTREAM_ACTORS_FLUSH_INTERVAL": "0.5", "CLIPSTREAM_MINIO_ACCESS_KEY": "k"})
    assert (s.cql.port, s.minio.secure, s.actors.flush_interval, s.minio.access_key) == (9043, True, 0.5, "k")


@pytest.mark.parametrize(
    "env, name",
    [
        ({"CLIPSTREAM_CQL_PORT": "x"}, "CLIPSTREAM_CQL_PORT"),
        ({"CLIPSTREAM_CQL_PORT": "70000"}, "CLIPSTREAM_CQL_PORT"),
        ({"CLIPSTREAM_HTTP_JWT_SECRET": "short"}, "CLIPSTREAM_HTTP_JWT_SECRET"),
        ({"CLIPSTREAM_NOPE_X": "1"}, "CLIPSTREAM_NOPE_X"),
        ({"CLIPSTREAM_ACTORS_PARTITIONS": "0"}, "CLIPSTREAM_ACTORS_PARTITIONS"),
    ],
)
def test_a_wrong_value_names_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env)


def test_every_variable_is_documented() -> None:
    variables = env_variables()
    assert len(variables) > 40
    for name, _type, _default, description in variables:
        assert name.startswith("CLIPSTREAM_") and description, name


def test_the_operators_runtime_knobs_reach_the_shards() -> None:
    from clipstream.actors.messages import RuntimeOptions

    s = load_settings({"CLIPSTREAM_ACTORS_LEASE_TTL": "9", "CLIPSTREAM_ACTORS_FETCH_BATCH": "200",
                       "CLIPSTREAM_ACTORS_MAX_ACK_PENDING": "5000", "CLIPSTREAM_ACTORS_ACK_WAIT": "45"})
    options = RuntimeOptions.from_settings(s.actors)
    assert (options.lease_ttl, options.fetch_batch, options.max_ack_pending, options.ack_wait) == (9, 200, 5000, 45)
