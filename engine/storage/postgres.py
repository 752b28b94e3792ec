"""The PostgreSQL dialect of the journal: the SQLite ``Journal``'s semantics on a shared database.

Selected by a ``postgresql://`` URL as the journal location (``SOP_JOURNAL`` or
``--journal``; ``engine.storage.location.database_url`` tells it from a file). The
``Journal`` then runs its own code (the same events, hash chain, anchor, verify,
records, confirmations, leases, cancel requests) on a psycopg 3 connection through
this dialect, which holds what differs (and ``engine.storage.pg_migrations`` the schema):

- every write transaction first takes a transaction-scoped advisory lock
  (``pg_advisory_xact_lock``): what ``BEGIN IMMEDIATE`` is to SQLite, so the chain head
  read inside it is the head, and a lease is read, judged and replaced atomically (a
  dead holder's lease is taken over by the conditional UPDATE on the token read);
- the per-action hot path stays one autocommitted INSERT (``insert_sql``);
- durability is the server's (``synchronous_commit``), not ``SOP_JOURNAL_SYNC``.
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any, cast

import psycopg

from engine.storage.pg_migrations import IDEMPOTENCY_KEY_SQL, LOCK_KEY, migrate

_INSERTS: dict[int, str] = {}


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """SQLite's ``?`` placeholders as psycopg's ``%s`` (the journal's SQL has no other ``?``)."""
    return sql.replace("%", "%%").replace("?", "%s")


class _Connection:
    """A psycopg connection in autocommit mode that takes the journal's SQL as written."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        if params is None:
            return self._conn.execute(cast(Any, sql))
        return self._conn.execute(cast(Any, _placeholders(sql)), params)

    def close(self) -> None:
        self._conn.close()


class PostgresDialect:
    """What the journal does differently on PostgreSQL (see the module docstring)."""

    begin = ("BEGIN", f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
    errors: tuple[type[Exception], ...] = (psycopg.Error,)
    insertion_order = "n"  # runs.n: BIGSERIAL, SQLite's rowid
    idempotency_key_sql = IDEMPOTENCY_KEY_SQL

    def __init__(self, url: str) -> None:
        self.url = url

    def connect(self) -> sqlite3.Connection:
        """A new autocommit connection; typed as the SQLite one it stands in for."""
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=30)
        return cast(sqlite3.Connection, _Connection(conn))

    @staticmethod
    def prepare(db: sqlite3.Connection, where: str) -> None:
        migrate(db, where)

    @staticmethod
    def insert_sql(count: int) -> str:
        """Event rows inserted once the statement holds the write lock.

        The per-action hot path is this one autocommitted statement (one round trip, one
        commit), as in SQLite: it appends after the cached head and, if another writer
        moved the head, fails on the primary key and is retried (``seq_taken``). The lock
        keeps it from slipping between a locked transaction's head read and its insert;
        taken again inside such a transaction it is a no-op.
        """
        found = _INSERTS.get(count)
        if found is None:
            values = ",".join(["(?::bigint,?,?,?,?,?,?,?)"] * count)
            found = _INSERTS[count] = (
                f"WITH write_lock AS (SELECT pg_advisory_xact_lock({LOCK_KEY}))"
                " INSERT INTO events(seq, run_id, ts, type, action_id, data, prev_hash, hash)"
                f" SELECT v.* FROM write_lock, (VALUES {values}) AS v"
            )
        return found

    @staticmethod
    def seq_taken(exc: Exception) -> bool:
        """Whether an INSERT failed because another writer took our first seq."""
        return (
            isinstance(exc, psycopg.errors.UniqueViolation)
            and exc.diag.constraint_name == "events_pkey"
        )
