"""compose.yaml cannot run here (no Docker engine); check it against the settings instead."""

from __future__ import annotations

from pathlib import Path

import yaml

from clipstream.config import env_variables, load_settings

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def test_every_clipstream_variable_it_sets_exists() -> None:
    known = {name for name, *_ in env_variables()}
    for name, service in SERVICES.items():
        for var in _env(service):
            if var.startswith("CLIPSTREAM_"):
                assert var in known, f"{name} sets {var}, which is not a setting"


def test_its_values_are_valid_settings() -> None:
    env = {k: v for k, v in _env(SERVICES["api"]).items() if "${" not in v}
    settings = load_settings(env)
    assert settings.cql.hosts == "scylla" and settings.nats.url == "nats://nats:4222"


def test_every_service_the_code_needs_is_there() -> None:
    assert {"scylla", "nats", "redis", "minio", "api", "node", "worker", "setup"} <= set(SERVICES)
    assert "-js" in SERVICES["nats"]["command"]
    for process in ("api", "node", "worker", "setup"):
        assert SERVICES[process]["command"][0] == "clipstream"


def test_minio_notifies_the_subject_the_workers_consume() -> None:
    minio = _env(SERVICES["minio"])
    defaults = load_settings({})
    assert minio["MINIO_NOTIFY_NATS_SUBJECT_PRIMARY"] == defaults.nats.minio_subject
    assert minio["MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY"] == "on"


def test_published_ports_are_loopback_only() -> None:
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
