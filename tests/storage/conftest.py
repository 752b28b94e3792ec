"""The storage tests' journal location: one parametrized fixture, both backends.

``location`` is a SQLite file in the test's tmp dir, then a fresh database on the
session's PostgreSQL cluster (tests/support/postgres.py); a test that takes it runs
once per backend. ``execute`` edits a journal behind its back (tampering, a lease
written by another process) in either database, with ``?`` placeholders.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from engine.storage.location import database_url


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "j.db")
    cluster = request.getfixturevalue("postgres_cluster")
    return str(cluster.database())


def execute(location: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the journal's database directly; its rows (if any)."""
    url = database_url(location)
    if url is None:
        with sqlite3.connect(location) as db:
            return db.execute(sql, params).fetchall()
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []
