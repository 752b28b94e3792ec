"""The PostgreSQL journal's schema: ordered, numbered migrations and a version table.

The same tables as the SQLite journal (``engine.storage.migrations``), in PostgreSQL's
types: ``DOUBLE PRECISION`` for epoch seconds (``REAL`` is 4 bytes there), ``COLLATE
"C"`` on run ids so a prefix range sorts bytewise as in SQLite, ``BIGSERIAL`` for the
insertion order SQLite's ``rowid`` gives. ``schema_version`` holds how many migrations
the database has had; they are applied in one transaction under the journal's advisory
lock, so concurrent openers wait and then find nothing left to do. A change is a new
entry at the end of ``MIGRATIONS``, never an edit of an old one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from engine.errors import SopError
from engine.storage.migrations import IDEMPOTENCY_PARAM

#: ``pg_advisory_xact_lock`` key of every journal write (and of migrations): "sopjrnl".
LOCK_KEY = 0x736F706A726E6C
IDEMPOTENCY_KEY_SQL = f"(params::jsonb ->> '{IDEMPOTENCY_PARAM}')"

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE events (
                seq BIGINT PRIMARY KEY,
                run_id TEXT COLLATE "C" NOT NULL,
                ts TEXT NOT NULL,
                type TEXT NOT NULL,
                action_id TEXT,
                data TEXT NOT NULL,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL
            )""",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE runs (
                run_id TEXT COLLATE "C" PRIMARY KEY,
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
                first_seq BIGINT,
                last_seq BIGINT,
                n BIGSERIAL NOT NULL
            )""",
            "CREATE INDEX runs_parent ON runs(parent_run_id)",
            f"CREATE INDEX runs_idempotency ON runs(sop, {IDEMPOTENCY_KEY_SQL})",
            """CREATE TABLE records (
                id BIGSERIAL PRIMARY KEY,
                run_id TEXT NOT NULL,
                action_id TEXT,
                kind TEXT NOT NULL,
                data TEXT NOT NULL,
                ts TEXT NOT NULL,
                event_seq BIGINT NOT NULL,
                key TEXT UNIQUE
            )""",
            "CREATE INDEX records_run ON records(run_id)",
            """CREATE TABLE confirmations (
                token_hash TEXT PRIMARY KEY,
                run_id TEXT NOT NULL,
                action_id TEXT NOT NULL,
                operation_hash TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                used_at TEXT
            )""",
            """CREATE TABLE leases (
                run_id TEXT PRIMARY KEY,
                token TEXT NOT NULL,
                pid INTEGER NOT NULL,
                host TEXT NOT NULL,
                since DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        2,
        (  # each `sop worker`'s heartbeat (engine.distributed.health); not evidence, not chained
            """CREATE TABLE workers (
                name TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid INTEGER NOT NULL,
                queues TEXT NOT NULL,
                concurrency INTEGER NOT NULL,
                started DOUBLE PRECISION NOT NULL,
                seen DOUBLE PRECISION NOT NULL,
                busy INTEGER NOT NULL DEFAULT 0,
                done INTEGER NOT NULL DEFAULT 0,
                stopped DOUBLE PRECISION
            )""",
        ),
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1][0]


def migrate(
    db: Any, where: str, migrations: Sequence[tuple[int, tuple[str, ...]]] = MIGRATIONS
) -> int:
    """Apply the migrations ``db`` (autocommit, ``?`` placeholders) lacks; the version now.

    A database newer than ``migrations`` is refused with SopError, untouched.
    """
    target = migrations[-1][0]
    db.execute("BEGIN")
    try:
        db.execute("SELECT pg_advisory_xact_lock(?)", (LOCK_KEY,))
        db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = db.execute("SELECT version FROM schema_version").fetchone()
        current = int(row[0]) if row else 0
        if current > target:
            raise SopError(
                f"journal {where} has schema version {current}; this sop-engine knows up to"
                f" {target} (upgrade sop-engine)"
            )
        for number, statements in migrations:
            if number > current:
                for statement in statements:
                    db.execute(statement)
        if row is None:
            db.execute("INSERT INTO schema_version(version) VALUES (?)", (target,))
        elif current != target:
            db.execute("UPDATE schema_version SET version=?", (target,))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return target
