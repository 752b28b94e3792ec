"""The PostgreSQL journal: the SQLite ``Journal``'s semantics on a shared database.

Selected by a ``postgresql://`` URL as the journal location (``SOP_JOURNAL`` or
``--journal``; ``engine.storage.location.database_url`` tells it from a file, and
``Journal(location)`` becomes a ``PostgresJournal``). Everything that gives the journal
its meaning is ``Journal``'s own code, run on a psycopg 3 connection: the same events,
hash chain (``engine.storage.verify``), anchor, verify, records, confirmations, leases
and cancel requests. What differs is here and in ``engine.storage.pg_migrations``:

- every write is one transaction that first takes a transaction-scoped advisory lock
  (``pg_advisory_xact_lock``): what ``BEGIN IMMEDIATE`` is to SQLite, so the chain head
  read inside it is the head, and a lease is read, judged and replaced atomically (a
  dead holder's lease is taken over by the conditional UPDATE on the token read);
- the per-action hot path is such a transaction too (SQLite's relies on the file's
  single writer), and it also moves the chain head anchor;
- durability is the server's (``synchronous_commit``), not ``SOP_JOURNAL_SYNC``.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any, cast

import psycopg

from engine.storage.journal import Journal
from engine.storage.location import database_url, default_path, shown
from engine.storage.pg_migrations import IDEMPOTENCY_KEY_SQL, LOCK_KEY, migrate

#: commits between SQLite WAL checkpoints: never, there is no WAL file here
_NO_CHECKPOINTS = 2**62


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


class PostgresJournal(Journal):
    """One journal in a PostgreSQL database; see the module docstring."""

    _BEGIN = ("BEGIN", f"SELECT pg_advisory_xact_lock({LOCK_KEY})")
    _ERRORS = (psycopg.Error,)
    _INSERTION_ORDER = "n"
    _IDEMPOTENCY_KEY_SQL = IDEMPOTENCY_KEY_SQL

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        lazy: bool = False,
        checkpoint_every: int | None = None,
    ) -> None:
        url = database_url(path if path is not None else default_path())
        if url is None:
            raise ValueError(f"{path}: not a postgresql:// URL")
        super().__init__(url, lazy=True, checkpoint_every=_NO_CHECKPOINTS)
        self.url = url
        self.path = Path(shown(url))
        if not lazy:
            self._open()

    def _connect(self) -> sqlite3.Connection:
        conn = psycopg.connect(self.url, autocommit=True, connect_timeout=30)
        return cast(sqlite3.Connection, _Connection(conn))

    def _prepare(self, db: sqlite3.Connection) -> None:
        migrate(db, str(self.path))

    def _commit_events(self, events: list[tuple[str, str, str | None, str]]) -> int:
        """The hot path: deferred events plus one more, in one locked transaction."""
        assert events[:-1] == self._deferred
        with self._tx(events[-1]):
            return self._head[0]


_CLASSES: dict[type[Journal], type[Journal]] = {Journal: PostgresJournal}


def postgres_class(cls: type[Journal]) -> type[Journal]:
    """``cls`` (``Journal`` or a subclass such as the CLI's observing one) on PostgreSQL:
    ``cls``'s own methods first, then ``PostgresJournal``'s, then ``Journal``'s."""
    if issubclass(cls, PostgresJournal):
        return cls
    found = _CLASSES.get(cls)
    if found is None:
        found = _CLASSES[cls] = type(f"Postgres{cls.__name__}", (cls, PostgresJournal), {})
    return found
