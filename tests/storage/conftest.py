"""The storage tests' journal location: one parametrized fixture, both backends.

``location`` is a SQLite file in the test's tmp dir, then a fresh database on the
session's PostgreSQL cluster (tests/support/postgres.py); a test that takes it runs
once per backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "j.db")
    cluster = request.getfixturevalue("postgres_cluster")
    return str(cluster.database())
