"""What is PostgreSQL's own: telling a URL from a file, its migrations, the API's journals."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import SopError
from engine.storage.journal import Journal
from engine.storage.journals import Journals
from engine.storage.location import database_url, exists, shown
from engine.storage.pg_migrations import SCHEMA_VERSION
from tests.support.journal_sql import execute
from tests.support.postgres import Postgres


def test_a_url_selects_postgresql_and_anything_else_is_a_file(tmp_path: Path) -> None:
    url = "postgresql://sop@db.internal:5432/journal"
    assert database_url(url) == url
    assert database_url(Path(url)) is None  # a Path is a file: URLs stay strings (chosen())
    assert database_url("postgres://h/db") == "postgres://h/db"
    assert database_url(tmp_path / "journal.db") is None
    assert database_url("postgresql.db") is None
    assert shown("postgresql://sop:s3cret@h:5432/db") == "postgresql://sop:***@h:5432/db"
    assert exists(url) and not exists(tmp_path / "journal.db")


def test_migrations_record_the_version_and_a_newer_database_is_refused(
    postgres_cluster: Postgres,
) -> None:
    url = postgres_cluster.database()
    Journal(url).close()
    Journal(url).close()  # a second open finds nothing to do
    assert execute(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    execute(url, "UPDATE schema_version SET version=?", (SCHEMA_VERSION + 1,))
    with pytest.raises(SopError, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade"):
        Journal(url)


def test_the_password_never_shows_in_the_journal_s_name(postgres_cluster: Postgres) -> None:
    url = postgres_cluster.url(postgres_cluster.database().rsplit("/", 1)[1])
    with_password = url.replace("postgres@", "postgres:hunter2@")  # trust auth ignores it
    with Journal(with_password) as journal:
        assert "hunter2" not in journal.location and journal.runs() == []
        assert journal.location.startswith("postgresql://postgres:***@127.0.0.1:")


def test_the_api_s_journals_keep_one_open_per_url(
    postgres_cluster: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_cluster.database()
    monkeypatch.setenv("SOP_JOURNAL", url)
    journals = Journals()
    first = journals.acquire()
    assert journals.acquire() is first and journals.acquire(url) is first
    for _ in range(3):
        journals.release(first)
    assert journals.acquire() is first  # kept open between runs
    journals.release(first)
    journals.close()
