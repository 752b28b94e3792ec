"""``compose.yaml`` parses and says what the README promises: PostgreSQL, Redis and two
workers sharing one journal and one broker, built from the Dockerfile with the extras
that exist in pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_has_postgres_redis_and_two_workers() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    workers = {name: s for name, s in services.items() if name.startswith("worker")}
    assert len(workers) == 2
    for worker in workers.values():
        assert worker["command"][:2] == ["sop", "worker"]
        env = worker["environment"]
        assert env["SOP_JOURNAL"].startswith("postgresql://") and "@postgres:" in env["SOP_JOURNAL"]
        assert env["SOP_BROKER"].startswith("redis://redis:")
        assert set(worker["depends_on"]) == {"postgres", "redis"}
        assert worker["build"] == "."
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "'.[postgres,workers]'" in dockerfile
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    assert {"postgres", "workers"} <= set(extras)
