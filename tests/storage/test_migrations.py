"""The journal schema: numbered migrations, versioned by ``PRAGMA user_version``.

Every earlier journal (fixtures written by the old code: tests/fixtures/journal_v1
from before versions, tests/fixtures/journal_versions/journal-vN.db by the commits
that wrote version N, made by make_journal.py there) opens, migrates, verifies and
resumes its crashed run. A migration killed midway leaves the file as it was.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import SopError
from engine.storage.journal import Journal
from engine.storage.migrations import MIGRATIONS, SCHEMA_VERSION

FIXTURES = Path(__file__).parents[1] / "fixtures"
VERSIONS = FIXTURES / "journal_versions"
#: (file, the legacy meta.schema_version it was written with; None: before versions)
EARLIER = [
    (FIXTURES / "journal_v1" / "journal-v1.db", None),
    (VERSIONS / "journal-v2.db", "2"),
    (VERSIONS / "journal-v3.db", "3"),
    (VERSIONS / "journal-v4.db", "4"),  # today's main before this change
]


def _versions(path: Path) -> tuple[int, str | None]:
    with sqlite3.connect(path) as db:
        user_version = int(db.execute("PRAGMA user_version").fetchone()[0])
        try:
            row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.OperationalError:
            row = None
    return user_version, (row[0] if row else None)


def _schema(path: Path) -> dict[str, Any]:
    """Tables with their columns, and index names: what the engine's SQL relies on."""
    with sqlite3.connect(path) as db:
        names = db.execute(
            "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        tables = {
            name: [row[1:3] for row in db.execute(f"PRAGMA table_info({name})")]
            for kind, name in names
            if kind == "table"
        }
    return {"tables": tables, "others": sorted(n for n in names if n[0] != "table")}


def _copy(source: Path, tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    shutil.copy(VERSIONS / "legacy-demo.sop.md", tmp_path / "sops")
    target = tmp_path / "journal.db"
    shutil.copy(source, target)
    return target


def _resume_crashed(path: Path) -> list[str]:
    """Verify, resume the run killed in its second action, verify again; the calls made."""
    registry = engine.Registry()
    calls: list[str] = []
    for name in ("one", "two", "three"):

        def handler(ctx: Any, name: str = name) -> None:
            calls.append(f"{name} {ctx.params['note']}")

        registry.action(f"record step {name}")(handler)
    with Journal(path) as journal:
        assert journal.verify() == []
        crashed = next(row for row in journal.runs() if row.status == "running")
        result = engine.resume(crashed.run_id, registry=registry, journal=journal)
        assert result.ok, result.errors
        assert journal.verify() == []
        assert [row.status for row in journal.runs()] == ["succeeded", "succeeded"]
    return calls


def test_migrations_are_numbered_in_order() -> None:
    assert [number for number, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len(MIGRATIONS) == SCHEMA_VERSION


def test_a_new_journal_records_its_version_in_user_version(tmp_path: Path) -> None:
    Journal(tmp_path / "j.db").close()
    assert _versions(tmp_path / "j.db") == (SCHEMA_VERSION, str(SCHEMA_VERSION))


@pytest.mark.parametrize(("source", "legacy"), EARLIER, ids=lambda v: getattr(v, "name", v))
def test_every_earlier_journal_migrates_verifies_and_resumes(
    source: Path, legacy: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(source, tmp_path)
    monkeypatch.chdir(tmp_path)
    assert _versions(path) == (0, legacy)  # as the old code left it
    assert _resume_crashed(path) == ["two crashed", "three crashed"]
    assert _versions(path) == (SCHEMA_VERSION, str(SCHEMA_VERSION))
    Journal(tmp_path / "new.db").close()
    assert _schema(path) == _schema(tmp_path / "new.db")  # the same schema as a new file


def test_a_newer_legacy_version_is_refused_untouched(tmp_path: Path) -> None:
    path = _copy(VERSIONS / "journal-v4.db", tmp_path)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    before = _schema(path)
    with pytest.raises(SopError, match="schema version 99; this sop-engine knows up to"):
        Journal(path)
    assert (_versions(path), _schema(path)) == ((0, "99"), before)


KILLED_MIDWAY = """
import os, signal, sqlite3, sys
from pathlib import Path
from engine.storage.migrations import MIGRATIONS, migrate

def die(db):
    # every earlier migration has run, in this transaction: the process dies here
    assert db.execute("PRAGMA index_info(records_key)").fetchall()
    print("midway", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

path = Path(sys.argv[1])
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
migrate(db, path, [*MIGRATIONS, (MIGRATIONS[-1][0] + 1, die)])
"""


def test_a_migration_killed_midway_leaves_the_journal_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _copy(VERSIONS / "journal-v2.db", tmp_path)
    before = _schema(path)
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(KILLED_MIDWAY), str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert killed.returncode == -9, killed.stderr
    assert killed.stdout == "midway\n"
    assert _versions(path) == (0, "2")  # rolled back: migrations 3 and 4 are gone too
    assert _schema(path) == before
    monkeypatch.chdir(tmp_path)
    assert _resume_crashed(path) == ["two crashed", "three crashed"]
    assert _versions(path) == (SCHEMA_VERSION, str(SCHEMA_VERSION))
