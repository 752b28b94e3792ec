"""The SQLite journal's schema: ordered, numbered migrations and ``PRAGMA user_version``.

``PRAGMA user_version`` (in the database header) says how many migrations a journal
has had; opening it applies the missing ones in order, all in one transaction
(``BEGIN IMMEDIATE``: a concurrent opener waits, then finds nothing left to do; a
process killed midway leaves the file as it was, and the next open starts over).
A schema change is a new entry at the end of ``MIGRATIONS``, never an edit of an
old one and never a DROP-and-probe at open.

Before ``user_version`` the version lived in ``meta.schema_version`` (1-4); a journal
with ``user_version`` 0 starts from there. It is still written, so an engine from
before this change refuses a newer journal ("upgrade sop-engine") instead of
re-running its own migrations on it. Journals from before any version (no key)
start at 0: migration 1 is written to bring those to the versioned baseline too.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.errors import SopError

#: The parameter through which a caller names one operation across runs.
IDEMPOTENCY_PARAM = "idempotency_key"
IDEMPOTENCY_KEY_SQL = f"json_extract(params, '$.{IDEMPOTENCY_PARAM}')"

#: One migration: its number and either SQL statements or a function of the connection.
Step = tuple[str, ...] | Callable[[sqlite3.Connection], None]
Migration = tuple[int, Step]


def _baseline(db: sqlite3.Connection) -> None:
    """Version 1: the tables, on a new file or on a journal from before versions.

    Those older journals had an index and a trigger on ``events`` that every write
    paid for, and no ``first_seq``/``last_seq`` on ``runs``: the one place the schema
    is inspected, because nothing recorded which of them a file has.
    """
    for statement in _BASELINE:
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    for column in ("first_seq", "last_seq"):
        if column not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {column} INTEGER")


_BASELINE = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        ts TEXT NOT NULL,
        type TEXT NOT NULL,
        action_id TEXT,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    )""",
    "DROP INDEX IF EXISTS events_run",
    "DROP TRIGGER IF EXISTS events_head",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        sop TEXT NOT NULL,
        sop_path TEXT,
        version TEXT,
        content_hash TEXT,
        params TEXT NOT NULL,
        handlers TEXT NOT NULL DEFAULT '[]',
        parent_run_id TEXT,
        status TEXT NOT NULL,
        pid INTEGER,
        started TEXT NOT NULL,
        updated TEXT NOT NULL,
        first_seq INTEGER,
        last_seq INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS runs_parent ON runs(parent_run_id)",
    """CREATE TABLE IF NOT EXISTS records (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL,
        action_id TEXT,
        kind TEXT NOT NULL,
        data TEXT NOT NULL,
        ts TEXT NOT NULL,
        event_seq INTEGER NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS records_run ON records(run_id)",
    """CREATE TABLE IF NOT EXISTS confirmations (
        token_hash TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        action_id TEXT NOT NULL,
        operation_hash TEXT NOT NULL,
        expires_at REAL NOT NULL,
        used_at TEXT
    )""",
)

#: Every migration, in order; the last number is the schema this engine writes.
MIGRATIONS: tuple[Migration, ...] = (
    (1, _baseline),
    (
        2,  # run leases (engine.storage.lease)
        (
            """CREATE TABLE leases (
                run_id TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                pid INTEGER NOT NULL,
                host TEXT NOT NULL,
                since REAL NOT NULL,
                expires_at REAL NOT NULL
            )""",
        ),
    ),
    (
        3,  # a caller's idempotency key finds its earlier runs without a scan (runner.run)
        (f"CREATE INDEX runs_idempotency ON runs(sop, {IDEMPOTENCY_KEY_SQL})",),
    ),
    (
        4,  # a record's key (RunContext.record): a re-run handler's record is written once;
        # records from before this migration keep NULL (not unique-constrained)
        (
            "ALTER TABLE records ADD COLUMN key TEXT",
            "CREATE UNIQUE INDEX records_key ON records(key)",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def version(db: sqlite3.Connection) -> int:
    """The migrations ``db`` has had: ``user_version``, else the legacy ``meta`` key."""
    current = int(db.execute("PRAGMA user_version").fetchone()[0])
    if current:
        return current
    try:
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    except sqlite3.OperationalError:  # no meta table: a new file, or from before versions
        return 0
    return int(row[0]) if row else 0


def migrate(
    db: sqlite3.Connection, path: Path, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Apply the migrations ``db`` lacks, in one transaction; returns the version now.

    ``db`` is in autocommit mode (``isolation_level=None``). A journal newer than
    ``migrations`` is refused with SopError, untouched.
    """
    target = migrations[-1][0]
    if int(db.execute("PRAGMA user_version").fetchone()[0]) == target:
        return target  # the common case: no write lock taken
    db.execute("BEGIN IMMEDIATE")
    try:
        current = version(db)  # again, under the lock: another opener may have migrated
        if current > target:
            raise SopError(
                f"journal {path} has schema version {current}; this sop-engine knows up to"
                f" {target} (upgrade sop-engine)"
            )
        for number, step in migrations:
            if number <= current:
                continue
            if callable(step):
                step(db)
            else:
                for statement in step:
                    db.execute(statement)
        db.execute(f"PRAGMA user_version={int(target)}")
        db.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(target),)
        )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return target
