"""The durable run journal: an append-only, hash-chained event log in SQLite.

The backend of ``engine.storage.base.Store``: on SQLite (schema and migrations in
``engine.storage.migrations``, default location in ``engine.storage.location``), or on
PostgreSQL when the location is a ``postgresql://`` URL (``engine.storage.postgres``:
the same code, a few statements and the connection differ).

Every event is committed before the runner's next side effect, so a run killed at
any point can be resumed from what the journal says happened. Each event's hash
covers the previous event's hash and its own row, so editing or deleting a row
breaks the chain at that row. The chain head is anchored in ``meta`` whenever a
run starts, pauses or ends (and with records and confirmations): deleting events
from the end is detected up to the last anchor. The per-action hot path is one
single-statement INSERT (one WAL commit) and does not move the anchor.

Everything handler- or user-provided is passed through ``engine.execution.redact`` before
it is written (``body``: the encoded text is scanned once for anything redaction
could change, and only then redacted object by object); engine-generated
identifiers (run ids, idempotency keys, hashes) go in ``raw`` and are stored as
they are.

Trust: ``runs``, ``records`` and ``confirmations`` mirror chained events for speed;
``verify`` checks every row against the events (``engine.storage.verify``), and what
resume and confirmation act on is read from the events (``verified_run``,
``confirmation``). Anyone who can write the file can still recompute the whole chain:
``head`` gives the chain head to keep elsewhere, and ``verify(head=...)`` checks the
chain still contains it.

Ownership: a run is owned by one process at a time through a row in ``leases``
(``acquire_lease`` / ``renew_leases`` / ``release_lease``, see ``engine.storage.lease``). A
new run's lease rides with its first commit and is released by the commit of its
end or pause, so leases add no commit to a run.

Durability: WAL with ``synchronous=NORMAL`` survives a killed process (the case
the runner's resume handles); set ``SOP_JOURNAL_SYNC=FULL`` to survive power loss too.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.canonical import body, canonical, safe, strict
from engine.errors import SopError
from engine.execution import seal
from engine.execution.redact import may_need_redaction, redact, redact_text
from engine.storage import lease as leases
from engine.storage import verify as check
from engine.storage.base import Confirmation as Confirmation
from engine.storage.base import Event as Event
from engine.storage.base import RunRow as RunRow
from engine.storage.base import StartedRun as StartedRun
from engine.storage.checkpointer import Checkpointer
from engine.storage.lease import Heartbeat, Lease, LeaseHeld, LeaseLost
from engine.storage.location import chosen, database_url, shown
from engine.storage.location import default_path as default_path
from engine.storage.migrations import IDEMPOTENCY_KEY_SQL, migrate
from engine.storage.migrations import IDEMPOTENCY_PARAM as IDEMPOTENCY_PARAM
from engine.storage.migrations import SCHEMA_VERSION as SCHEMA_VERSION
from engine.storage.verify import GENESIS, row_hash

if TYPE_CHECKING:
    from engine.storage.postgres import PostgresDialect

_INSERT = "INSERT INTO events(seq, run_id, ts, type, action_id, data, prev_hash, hash) VALUES "
_INSERT_MANY: dict[int, str] = {}
#: The columns RunRow is made of (``_run_row``), in its order.
_SELECT_RUNS = (
    "SELECT run_id, sop, sop_path, version, content_hash, params, handlers,"
    " parent_run_id, status, pid, started, updated FROM runs"
)
_INSERT_RUN = (
    "INSERT INTO runs(run_id, sop, sop_path, version, content_hash, params, handlers,"
    " parent_run_id, status, pid, started, updated, first_seq) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last whole second formatted (a cache)


#: statuses a run never leaves (its ``runs.last_seq`` is its ``run_finished`` event)
_TERMINAL = frozenset({"succeeded", "failed", "rejected", "cancelled", "blocked"})


def _now() -> str:
    """UTC now, as ``datetime.isoformat(timespec="microseconds")`` spells it, in ~0.5 us."""
    sec, micro = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _SECOND[0]
    if cached[0] != sec:
        cached = (sec, datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        _SECOND[0] = cached
    return f"{cached[1]}.{micro:06d}+00:00"


def params_match(started: StartedRun, params: Mapping[str, Any]) -> bool:
    """Whether ``params`` are exactly the ones ``started`` sealed (``engine.execution.seal``)."""
    assert started.params_sha256 is not None
    return seal.matches(started.params_sha256, started.run_id, canonical(dict(params)))


class Journal:
    """One journal (a SQLite file, or a PostgreSQL database named by a ``postgresql://``
    URL); safe to share between the runner and a handler thread.

    The attributes set from the backend below are the few places the SQL differs
    (``engine.storage.postgres``); everything else is the same code on both.
    """

    #: the statements that open a write transaction holding the journal's write lock
    _BEGIN: tuple[str, ...] = ("BEGIN IMMEDIATE",)
    _READ_BEGIN = "BEGIN"  # a WAL read transaction: one snapshot (verify)
    #: the errors of the database driver (turned into SopError)
    _ERRORS: tuple[type[Exception], ...] = (sqlite3.Error,)
    #: the tie-breaker after ``started`` in ``runs()``: insertion order
    _INSERTION_ORDER = "rowid"
    #: the expression of a run's idempotency key parameter (indexed)
    _IDEMPOTENCY_KEY_SQL = IDEMPOTENCY_KEY_SQL
    #: the PostgreSQL dialect (None: SQLite)
    _pg: PostgresDialect | None = None

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        lazy: bool = False,
        checkpoint_every: int | None = None,
    ) -> None:
        """Open (or create) the journal at ``path`` (default: ``location.default_path()``).

        ``lazy``: a file that does not exist yet is created at first use instead, so a
        run refused before it starts (unknown SOP, bad parameters, an unbound line)
        leaves no journal behind. ``checkpoint_every``: commits between background WAL
        checkpoints (``engine.storage.checkpointer``; default ``EVERY``).
        """
        where = chosen(path)
        url = database_url(where)
        #: the SQLite file (None on PostgreSQL)
        self.path: Path | None = None if url is not None else Path(where)
        #: where it lives, as messages name it: the file, or the URL without its password
        self.location = shown(url) if url is not None else str(where)
        if url is not None:  # psycopg is imported only when a URL asks for it
            from engine.storage.postgres import PostgresDialect

            self._pg = pg = PostgresDialect(url)
            self._BEGIN, self._ERRORS = pg.begin, pg.errors
            self._READ_BEGIN = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            self._INSERTION_ORDER, self._IDEMPOTENCY_KEY_SQL = (
                pg.insertion_order,
                pg.idempotency_key_sql,
            )
        sync = os.environ.get("SOP_JOURNAL_SYNC", "NORMAL").upper()
        if sync not in ("OFF", "NORMAL", "FULL", "EXTRA"):
            raise SopError(f"SOP_JOURNAL_SYNC={sync!r}: expected NORMAL or FULL")
        self._sync = sync
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        if not lazy or (
            self.path is not None and self.path.exists()
        ):  # else opened (and created) at first use: ``_db``
            self._open()
        self._deferred: list[tuple[str, str, str | None, str]] = []
        #: ``runs`` rows of started runs, each with the index of its ``run_started`` event in
        #: ``_deferred`` and its lease token: written in the transaction that commits that event.
        self._new_runs: list[tuple[int, tuple[Any, ...], str]] = []
        self._head: tuple[int, str] = (0, GENESIS)
        self._head_known = False
        self._checkpoints = Checkpointer(self.path, sync, checkpoint_every)
        self._ttl = leases.ttl_seconds()
        #: run id -> token of each lease this journal holds (or will, at the run's first commit)
        self._leases: dict[str, str] = {}
        self._uncommitted: set[str] = set()  # leases of runs whose first commit is pending
        self._lost: dict[str, str] = {}  # run id -> why: leases taken over from us
        self._heartbeat: Heartbeat | None = None
        self._lease_db: sqlite3.Connection | None = None  # the heartbeat's own connection
        self._lease_lock = threading.Lock()
        # run id -> (last seq cancel_request scanned, PRAGMA data_version then)
        self._cancel_scan: dict[str, tuple[int, int | None]] = {}

    @property
    def _db(self) -> sqlite3.Connection:
        """The connection; a lazy journal opens it at first use."""
        db = self._conn
        return db if db is not None else self._open()

    def _open(self) -> sqlite3.Connection:
        with self._lock:
            if self._conn is not None:
                return self._conn
            if self._closed:
                raise SopError(f"journal {self.location} is closed")
            try:
                db = self._connect()
                try:
                    self._prepare(db)
                except BaseException:
                    db.close()
                    raise
            except Exception as exc:
                if not isinstance(exc, (OSError, *self._ERRORS)):
                    raise
                raise SopError(f"cannot open journal {self.location}: {exc}") from exc
            self._conn = db
            return db

    def _connect(self) -> sqlite3.Connection:
        """A new autocommit connection (the journal's own, and the heartbeat's)."""
        if self.path is None:
            assert self._pg is not None
            return self._pg.connect()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return sqlite3.connect(
            str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
        )

    def _prepare(self, db: sqlite3.Connection) -> None:
        """Settings and migrations, once, on the journal's own connection."""
        if self.path is None:
            assert self._pg is not None
            self._pg.prepare(db, self.location)
            return
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._sync}")
        migrate(db, self.path)

    def close(self) -> None:
        with self._lock:
            try:
                self.flush()
            finally:
                if self._heartbeat is not None:
                    self._heartbeat.close()
                for run_id in list(self._leases):
                    self.release_lease(run_id)
                with self._lease_lock:
                    if self._lease_db is not None:
                        self._lease_db.close()
                        self._lease_db = None
                self._checkpoints.close()
                self._closed = True  # using it again is a SopError, not a reopen
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(
        self,
        event: tuple[str, str, str | None, str] | None = None,
        *,
        release: str | None = None,
    ) -> Iterator[sqlite3.Connection]:
        """One write transaction; deferred events (and ``event``) are written first, in one
        INSERT, the chain head last. New runs' rows and leases ride with it; ``release``
        names a run whose lease it gives up."""
        with self._lock:
            db = self._db
            for statement in self._BEGIN:
                db.execute(statement)
            committed: list[str] = []
            try:
                self._read_head()
                events = self._deferred if event is None else [*self._deferred, event]
                before = self._head[0]
                if events:
                    self._insert_rows(db, events)
                for index, run_row, token in self._new_runs:
                    db.execute(_INSERT_RUN, (*run_row, before + index + 1))
                    if self._leases.get(run_row[0]) == token:
                        now = time.time()
                        db.execute(
                            "INSERT INTO leases(run_id, token, pid, host, since, expires_at)"
                            " VALUES (?,?,?,?,?,?)",
                            (
                                run_row[0],
                                token,
                                os.getpid(),
                                leases.host(),
                                now,
                                now + self._ttl,
                            ),
                        )
                        committed.append(run_row[0])
                yield db
                released = self._leases.get(release) if release is not None else None
                if released is not None:
                    db.execute("DELETE FROM leases WHERE run_id=? AND token=?", (release, released))
                db.execute(
                    "INSERT INTO meta(key, value) VALUES ('head', ?)"
                    " ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (f"{self._head[0]}:{self._head[1]}",),
                )
            except BaseException as exc:
                db.execute("ROLLBACK")
                self._head_known = False
                if isinstance(exc, self._ERRORS):
                    raise SopError(f"journal {self.location}: {exc}") from exc
                raise
            db.execute("COMMIT")
            self._checkpoints.committed()
            self._deferred.clear()
            self._new_runs.clear()
            if committed:
                self._uncommitted.difference_update(committed)
                self._beat()
            if released is not None and release is not None:
                self._forget_lease(release)

    def _read_head(self) -> None:
        """The last event's seq and hash (a primary-key lookup)."""
        last = self._db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self._head = (int(last[0]), str(last[1])) if last else (0, GENESIS)
        self._head_known = True

    def _commit_events(self, events: list[tuple[str, str, str | None, str]]) -> int:
        """Deferred events plus one more in a single autocommitted INSERT: the hot path.

        One statement, one b-tree, one WAL commit per action. The chain head is cached;
        if another writer appended meanwhile, our first seq is taken (PRIMARY KEY), the
        insert fails as a whole, and we re-read and retry. The ``meta`` anchor is
        written by the other (status-changing) transactions, not here.
        """
        for _ in range(100):
            if not self._head_known:
                self._read_head()
            try:
                seq = self._insert_rows(self._db, events)
            except self._ERRORS as exc:
                if not self._seq_taken(exc):
                    raise SopError(f"journal {self.location}: {exc}") from exc
                self._head_known = False
                continue
            self._deferred.clear()
            self._checkpoints.committed()
            return seq
        raise SopError(f"journal {self.location}: could not append (chain head keeps moving)")

    # -- writing --------------------------------------------------------------------

    def _insert_rows(
        self, db: sqlite3.Connection, events: list[tuple[str, str, str | None, str]]
    ) -> int:
        """Chain ``events`` after the head in one multi-row INSERT; the head moves only once
        the INSERT succeeded. Returns the last seq."""
        rows: list[Any] = []
        seq, prev = self._head
        ts = _now()  # one statement, one instant
        for run_id, type_, action_id, text in events:
            seq += 1
            digest = row_hash(prev, seq, run_id, ts, type_, action_id, text)
            rows.extend((seq, run_id, ts, type_, action_id, text, prev, digest))
            prev = digest
        db.execute(self._insert_sql(len(events)), rows)
        self._head = (seq, prev)
        return seq

    def _insert_sql(self, count: int) -> str:
        """The INSERT of ``count`` event rows (8 placeholders each)."""
        if self._pg is not None:
            return self._pg.insert_sql(count)
        sql = _INSERT_MANY.get(count)
        if sql is None:
            sql = _INSERT_MANY[count] = _INSERT + ",".join(["(?,?,?,?,?,?,?,?)"] * count)
        return sql

    def _seq_taken(self, exc: Exception) -> bool:
        """Whether an INSERT failed because another writer took our first seq."""
        if self._pg is not None:
            return self._pg.seq_taken(exc)
        return isinstance(exc, sqlite3.IntegrityError) and "events.seq" in str(exc)

    def _append(
        self,
        db: sqlite3.Connection,
        run_id: str,
        type_: str,
        action_id: str | None,
        data: Mapping[str, Any] | None,
        raw: Mapping[str, Any] | None,
    ) -> int:
        return self._insert_rows(db, [(run_id, type_, action_id, body(data, raw))])

    def append(
        self,
        run_id: str,
        type_: str,
        action_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        *,
        raw: Mapping[str, Any] | None = None,
        status: str | None = None,
        defer: bool = False,
    ) -> int:
        """Commit one event (``data`` redacted, ``raw`` as is); optionally set the run's status.

        ``defer=True`` queues the event to be committed with the next write (returns 0):
        the runner defers ``action_finished`` to the commit of the next ``action_started``,
        which still lands before the next handler's side effect, one commit per action.
        """
        text = body(data, raw)
        seq = self.append_text(run_id, type_, action_id, text, status=status, defer=defer)
        if type_ == "cancel_requested":  # committed on this connection: data_version stays
            with self._lock:
                self._cancel_scan.pop(run_id, None)  # so the next check scans again
        return seq

    def append_text(
        self,
        run_id: str,
        type_: str,
        action_id: str | None,
        text: str,
        *,
        status: str | None = None,
        defer: bool = False,
    ) -> int:
        """``append`` for an event body already made by ``body`` (or engine-built and safe).

        ``text`` must be canonical JSON with nothing left to redact: the runner builds
        ``action_started`` (attempt number, idempotency key) this way.
        """
        if self._lost and run_id in self._lost:
            raise LeaseLost(self._lost[run_id])
        if status is not None:
            release = run_id if status != "running" else None
            with self._lock, self._tx((run_id, type_, action_id, text), release=release) as db:
                seq = self._head[0]  # the event just written with the deferred ones
                db.execute(
                    "UPDATE runs SET status=?, updated=?, last_seq=? WHERE run_id=?",
                    (status, _now(), seq if status in _TERMINAL else None, run_id),
                )
                if release is not None:  # this process no longer walks it: no more checks
                    self._cancel_scan.pop(run_id, None)
                return seq
        with self._lock:
            if defer:
                self._deferred.append((run_id, type_, action_id, text))
                return 0
            if self._new_runs:  # a run's first commit also writes its ``runs`` row
                with self._tx((run_id, type_, action_id, text)):
                    return self._head[0]
            if self._deferred:
                return self._commit_events([*self._deferred, (run_id, type_, action_id, text)])
            return self._commit_events([(run_id, type_, action_id, text)])

    def flush(self) -> None:
        """Commit deferred events now."""
        with self._lock:
            if self._deferred:
                with self._tx():
                    pass

    def start_run(
        self,
        run_id: str,
        *,
        sop: str,
        sop_path: str | None,
        version: str | None,
        content_hash: str | None,
        params: Mapping[str, Any],
        handlers: list[str],
        parent_run_id: str | None = None,
    ) -> None:
        """The ``runs`` row and the ``run_started`` event, queued for the run's first commit.

        That is the commit of its first ``action_started`` (or of its end), so both land
        before any handler runs, without a commit of their own. A process killed before
        then leaves no trace, and nothing of the run has happened.
        """
        now = _now()
        params = dict(params)
        try:
            exact = strict(params)
        except (TypeError, ValueError):  # not plain JSON: redact() decides what it becomes
            exact = None
        if exact is not None and not may_need_redaction(exact):
            safe_params, altered = params, []
        else:
            safe_params = redact(params)
            altered = sorted(
                redact_text(name)
                for name, value in params.items()
                if name not in safe_params or canonical(safe_params[name]) != canonical(value)
            )
        digest = seal.seal(
            run_id, exact if exact is not None else canonical(params), keyed=bool(altered)
        )
        text = safe(
            {  # engine-made, or redacted just above (an odd object: its redacted str)
                "params": safe_params,
                "params_sha256": digest,
                "redacted_params": altered,
                "sop": sop,
                "sop_path": sop_path,
                "version": version,
                "content_hash": content_hash,
                "handlers": handlers,
                "parent_run_id": parent_run_id,
                "pid": os.getpid(),
            }
        )
        row = (
            run_id,
            sop,
            sop_path,
            version,
            content_hash,
            canonical(safe_params),
            canonical(handlers),
            parent_run_id,
            "running",
            os.getpid(),
            now,
            now,
        )
        with self._lock:
            taken = any(pending[1][0] == run_id for pending in self._new_runs) or (
                self._db.execute("SELECT 1 FROM runs WHERE run_id=?", (run_id,)).fetchone()
            )
            if taken:
                raise SopError(f"journal {self.location}: run {run_id} already exists")
            token = leases.new_token()
            self._leases[run_id] = token
            self._uncommitted.add(run_id)
            leases.LIVE_TOKENS.add(token)
            self._new_runs.append((len(self._deferred), row, token))
            self._deferred.append((run_id, "run_started", None, text))

    def claim(self, run_id: str, type_: str, data: Mapping[str, Any] | None = None) -> None:
        """Journal why this process (the lease holder) now runs ``run_id`` (resume)."""
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status='running', pid=?, updated=?, last_seq=NULL WHERE run_id=?",
                (os.getpid(), _now(), run_id),
            )
            self._append(db, run_id, type_, None, data, {"pid": os.getpid()})

    # -- leases ---------------------------------------------------------------------

    def acquire_lease(self, run_id: str) -> Lease | None:
        """Own ``run_id``: atomically take its lease, or raise LeaseHeld naming the owner.

        Returns the lease taken over from a dead owner, if any. Under one write lock
        (BEGIN IMMEDIATE) the current lease is read, judged (``engine.storage.lease``), and
        replaced by a conditional UPDATE on the token that was read.
        """
        token = leases.new_token()
        now = time.time()
        mine = (token, os.getpid(), leases.host(), now, now + self._ttl)
        previous: Lease | None = None
        with self._lock, self._tx() as db:
            row = db.execute(
                "SELECT token, pid, host, since, expires_at FROM leases WHERE run_id=?", (run_id,)
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO leases(token, pid, host, since, expires_at, run_id)"
                    " VALUES (?,?,?,?,?,?)",
                    (*mine, run_id),
                )
            else:
                held = Lease(run_id, *row)
                if self._leases.get(run_id) == held.token or not leases.may_take_over(held, now):
                    raise LeaseHeld(held)
                cur = db.execute(
                    "UPDATE leases SET token=?, pid=?, host=?, since=?, expires_at=?"
                    " WHERE run_id=? AND token=?",
                    (*mine, run_id, held.token),
                )
                if cur.rowcount != 1:
                    raise LeaseHeld(held)
                previous = held
        self._leases[run_id] = token
        self._lost.pop(run_id, None)
        leases.LIVE_TOKENS.add(token)
        self._beat()
        return previous

    def renew_leases(self) -> None:
        """Push the expiry of every lease this journal holds; a lease found taken over is
        marked lost (the run's next journal write raises LeaseLost). The heartbeat calls
        this, on a connection of its own so it never waits for the runner's lock."""
        with self._lease_lock:
            if self._lease_db is None:
                self._lease_db = self._connect()
            db = self._lease_db
            expires = time.time() + self._ttl
            for run_id, token in list(self._leases.items()):
                if run_id in self._uncommitted:
                    continue
                cur = db.execute(
                    "UPDATE leases SET expires_at=? WHERE run_id=? AND token=?",
                    (expires, run_id, token),
                )
                if cur.rowcount == 1:
                    continue
                holder = db.execute("SELECT token FROM leases WHERE run_id=?", (run_id,)).fetchone()
                if holder is not None and holder[0] != token:  # none: we just released it
                    self._lost[run_id] = (
                        f"run {run_id}: this process lost its lease (another process took the"
                        " run over); stopping"
                    )

    def release_lease(self, run_id: str) -> None:
        """Give up ``run_id``'s lease if this journal holds it (a no-op otherwise)."""
        with self._lock:
            token = self._leases.get(run_id)
            if token is None:
                return
            if run_id not in self._uncommitted:
                try:
                    self._db.execute(
                        "DELETE FROM leases WHERE run_id=? AND token=?", (run_id, token)
                    )
                except self._ERRORS as exc:
                    raise SopError(f"journal {self.location}: {exc}") from exc
            self._forget_lease(run_id)

    def lease(self, run_id: str) -> Lease | None:
        """The lease on ``run_id`` as stored (whoever holds it)."""
        with self._lock:
            row = self._db.execute(
                "SELECT token, pid, host, since, expires_at FROM leases WHERE run_id=?", (run_id,)
            ).fetchone()
        return Lease(run_id, *row) if row else None

    def _forget_lease(self, run_id: str) -> None:
        token = self._leases.pop(run_id, None)
        if token is not None:
            leases.LIVE_TOKENS.discard(token)
        self._uncommitted.discard(run_id)

    def _beat(self) -> None:
        """Start the heartbeat the first time this journal holds a committed lease."""
        if self._heartbeat is None:
            self._heartbeat = Heartbeat(self.renew_leases, self._ttl / 3)

    def add_record(
        self,
        run_id: str,
        action_id: str | None,
        kind: str,
        data: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> bool:
        """A redacted audit record: a chained ``record`` event plus a row in ``records``.

        ``key`` (engine-generated, chained in the event's ``raw``) makes it idempotent: a
        record whose key is already journaled is not written again (False), so a handler
        re-run after a crash before its outcome was journaled records nothing twice.
        """
        safe = redact(dict(data))
        with self._tx() as db:
            if (
                key is not None
                and db.execute("SELECT 1 FROM records WHERE key=?", (key,)).fetchone()
            ):
                return False
            raw = {"key": key} if key is not None else None
            seq = self._append(db, run_id, "record", action_id, {"kind": kind, "data": safe}, raw)
            db.execute(
                "INSERT INTO records(run_id, action_id, kind, data, key, ts, event_seq)"
                " VALUES (?,?,?,?,?,?,?)",
                (run_id, action_id, kind, canonical(safe), key, _now(), seq),
            )
        return True

    def add_confirmation(
        self,
        run_id: str,
        action_id: str,
        *,
        token_hash: str,
        operation_hash: str,
        expires_at: float,
        data: Mapping[str, Any],
    ) -> None:
        """Pause ``run_id``: the pending event and the (hashed) token, in one transaction."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO confirmations(token_hash, run_id, action_id, operation_hash,"
                " expires_at) VALUES (?,?,?,?,?)",
                (token_hash, run_id, action_id, operation_hash, expires_at),
            )
            self._append(
                db,
                run_id,
                "action_pending",
                action_id,
                data,
                {
                    "token_hash": token_hash,
                    "operation_hash": operation_hash,
                    "expires_at": expires_at,
                },
            )
            db.execute(
                "UPDATE runs SET status='paused', updated=? WHERE run_id=?", (_now(), run_id)
            )

    def use_confirmation(self, token_hash: str, data: Mapping[str, Any] | None = None) -> bool:
        """Spend a token; False when it was already used (tokens are single-use). ``data``
        (who decided, and how) rides on the ``confirmation_used`` event."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE confirmations SET used_at=? WHERE token_hash=? AND used_at IS NULL",
                (_now(), token_hash),
            )
            if cur.rowcount != 1:
                return False
            row = db.execute(
                "SELECT run_id, action_id FROM confirmations WHERE token_hash=?", (token_hash,)
            ).fetchone()
            self._append(db, row[0], "confirmation_used", row[1], data, {"token_hash": token_hash})
            return True

    def cancel_request(self, run_id: str) -> Event | None:
        """The ``cancel_requested`` event of ``run_id``, if one was appended (by any process).

        Asked by the runner between actions: each call scans only the events committed
        since the previous call (a primary-key range; ``events`` has no run_id index).
        """
        with self._lock:
            # SQLite's data_version moves only when another connection commits: nothing
            # new from anyone else means no request (one pragma, not a query, per action).
            # PostgreSQL has no such counter: it scans the new events each time.
            version = None
            if self._pg is None:
                version = int(self._db.execute("PRAGMA data_version").fetchone()[0])
            scanned = self._cancel_scan.get(run_id)
            if version is not None and scanned is not None and scanned[1] == version:
                return None
            if scanned is None:
                row = self._db.execute(
                    "SELECT first_seq FROM runs WHERE run_id=?", (run_id,)
                ).fetchone()
                if row is None or row[0] is None:
                    return None  # not committed yet: nobody else knows the run
                start = int(row[0])
            else:
                start = scanned[0]
            # one statement, one snapshot: the head, and a request after ``start``
            top, seq = self._db.execute(
                "SELECT (SELECT MAX(seq) FROM events), (SELECT seq FROM events WHERE seq > ?"
                " AND run_id=? AND type='cancel_requested' LIMIT 1)",
                (start, run_id),
            ).fetchone()
            if seq is None:
                self._cancel_scan[run_id] = (top or start, version)
                return None
            found = self._db.execute(
                "SELECT seq, run_id, ts, type, action_id, data FROM events WHERE seq=?", (seq,)
            ).fetchone()
        return Event(found[0], found[1], found[2], found[3], found[4], json.loads(found[5]))

    # -- reading --------------------------------------------------------------------

    def confirmation(self, token_hash: str) -> Confirmation | None:
        """The confirmation a token hash names, with the values its chained events give;
        SopError when the ``confirmations`` row disagrees with them (the table was edited)."""
        with self._lock:
            self.flush()
            row = self._db.execute(
                "SELECT token_hash, run_id, action_id, operation_hash, expires_at, used_at"
                " FROM confirmations WHERE token_hash=?",
                (token_hash,),
            ).fetchone()
        if row is None:
            return None
        run_id = str(row[1])
        facts = check.collect(self._event_rows(run_id)).get(run_id)
        pending = facts.pending.get(token_hash) if facts is not None else None
        if (
            facts is None
            or pending is None
            or pending != (row[2], row[3], row[4])
            or (row[5] is not None) != (token_hash in facts.used)
        ):
            raise SopError(
                f"journal {self.location}: the confirmation of run {run_id} does not match its"
                " chained events (the confirmations table was edited; see `sop journal verify`)"
            )
        return Confirmation(token_hash, run_id, str(pending[0]), pending[1], pending[2], row[5])

    def started(self, run_id: str) -> StartedRun | None:
        """``run_id`` as its chained ``run_started`` (and later) events tell it; not verified."""
        facts = check.collect(self._event_rows(run_id)).get(run_id)
        if facts is None or facts.started is None:
            return None
        data = facts.started
        digest = data.get("params_sha256")
        return StartedRun(
            run_id=run_id,
            sop=str(data.get("sop")),
            sop_path=data.get("sop_path"),
            version=data.get("version"),
            content_hash=data.get("content_hash"),
            params=dict(data.get("params") or {}),
            handlers=list(data.get("handlers") or []),
            parent_run_id=data.get("parent_run_id"),
            status=str(facts.status),
            params_sha256=str(digest) if digest is not None else None,
            redacted_params=list(data.get("redacted_params") or []),
        )

    def verified_run(self, run_id: str) -> StartedRun:
        """``started(run_id)`` once the run's events and rows pass ``verify``; else SopError."""
        problems = self.verify(run_id=run_id)
        found = self.started(run_id) if not problems else None
        if found is None:
            first = problems[0] if problems else "its run_started event is missing"
            raise SopError(
                f"journal {self.location}: run {run_id} fails verification ({first}); refusing to"
                " act on it (`sop journal verify` lists every problem)"
            )
        return found

    def head(self) -> tuple[int, str]:
        """The chain head (last seq and its hash): keep it outside the database and check
        later with ``verify(head=...)`` that the chain still contains it."""
        with self._lock:
            self.flush()
            self._read_head()
            return self._head

    def run(self, run_id: str) -> RunRow | None:
        with self._lock:
            self.flush()
            row = self._db.execute(_SELECT_RUNS + " WHERE run_id=?", (run_id,)).fetchone()
        return _run_row(row) if row else None

    def runs(self, limit: int | None = None) -> list[RunRow]:
        sql = _SELECT_RUNS + f" ORDER BY started DESC, {self._INSERTION_ORDER} DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            self.flush()
            rows = self._db.execute(sql).fetchall()
        return [_run_row(row) for row in rows]

    def run_ids_starting(self, prefix: str, limit: int) -> list[str]:
        """Up to ``limit`` run ids that start with ``prefix``, sorted (a primary-key range)."""
        with self._lock:
            self.flush()
            rows = self._db.execute(
                "SELECT run_id FROM runs WHERE run_id >= ? AND run_id < ? ORDER BY run_id LIMIT ?",
                (prefix, prefix + "\U0010ffff", int(limit)),
            ).fetchall()
        return [str(row[0]) for row in rows]

    def runs_with_idempotency_key(self, sop: str, keys: Sequence[str]) -> list[RunRow]:
        """Runs of ``sop`` whose ``idempotency_key`` parameter is one of ``keys`` (indexed)."""
        marks = ",".join("?" * len(keys))
        with self._lock:
            self.flush()
            rows = self._db.execute(
                _SELECT_RUNS + f" WHERE sop=? AND {self._IDEMPOTENCY_KEY_SQL} IN ({marks})",
                (sop, *keys),
            ).fetchall()
        return [_run_row(row) for row in rows]

    def _event_rows(self, run_id: str) -> list[check.EventRow]:
        """The run's events, whole rows, in seq order."""
        with self._lock:
            self.flush()
            bounds = self._db.execute(
                "SELECT first_seq, last_seq FROM runs WHERE run_id=?", (run_id,)
            ).fetchone()
            first, last = bounds if bounds else (None, None)
            # no index on run_id: a primary-key range from the run's first event
            return self._db.execute(
                "SELECT seq, run_id, ts, type, action_id, data, prev_hash, hash FROM events"
                " WHERE seq >= ? AND seq <= ? AND run_id=? ORDER BY seq",
                (first or 0, last if last is not None else 2**62, run_id),
            ).fetchall()

    def events(self, run_id: str) -> list[Event]:
        return [
            Event(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in self._event_rows(run_id)
        ]

    def records(self, run_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT action_id, kind, data, ts, key FROM records WHERE run_id=? ORDER BY id",
                (run_id,),
            ).fetchall()
        return [
            {"action_id": r[0], "kind": r[1], "data": json.loads(r[2]), "ts": r[3], "key": r[4]}
            for r in rows
        ]

    def children(self, run_id: str) -> list[RunRow]:
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT run_id FROM runs WHERE parent_run_id=? ORDER BY started", (run_id,)
                )
            ]
        return [row for row in (self.run(i) for i in ids) if row is not None]

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """Reads that see one state of the database: another process's commit between two
        of them (events, then the head anchor) would look like tampering."""
        self.flush()
        self._db.execute(self._READ_BEGIN)
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def verify(self, *, run_id: str | None = None, head: str | None = None) -> list[str]:
        """Every problem found, first one first; empty when the journal is intact.

        The hash chain (edited, deleted, reordered events; the ``meta`` head anchor),
        then every table against the chained events (``engine.storage.verify``). With
        ``run_id``: that run's rows, and the chain from its first event to the head.
        With ``head`` (``SEQ:HASH`` from ``head()``, or a bare hash): the chain must
        still contain it, which catches a chain rewritten as a whole.
        """
        db = self._db
        args: tuple[str, ...]
        with self._lock, self._snapshot():
            columns = "SELECT seq, run_id, ts, type, action_id, data, prev_hash, hash FROM events"
            where, args = "", ()
            if run_id is None:
                rows = db.execute(columns + " ORDER BY seq").fetchall()
            else:
                first = db.execute(
                    "SELECT MIN(seq) FROM events WHERE run_id=?", (run_id,)
                ).fetchone()[0]
                if first is None:
                    return [f"run {run_id}: no events (deleted)"]
                rows = db.execute(columns + " WHERE seq >= ? ORDER BY seq", (first - 1,)).fetchall()
                where, args = " WHERE run_id=?", (run_id,)
            anchor = db.execute("SELECT value FROM meta WHERE key='head'").fetchone()
            runs = db.execute(
                "SELECT run_id, sop, sop_path, version, content_hash, parent_run_id, params,"
                " handlers, status, first_seq, last_seq FROM runs" + where,
                args,
            ).fetchall()
            records = db.execute(
                "SELECT id, run_id, action_id, kind, data, key, event_seq FROM records"
                + where
                + " ORDER BY id",
                args,
            ).fetchall()
            confirmations = db.execute(
                "SELECT token_hash, run_id, action_id, operation_hash, expires_at, used_at"
                " FROM confirmations" + where,
                args,
            ).fetchall()
            lease_rows = db.execute("SELECT run_id, pid, host FROM leases" + where, args).fetchall()
        problems = check.chain_problems(rows, GENESIS if run_id is None else None)
        hashes = {row[0]: row[7] for row in rows}
        last = rows[-1][0] if rows else 0
        if anchor:  # the anchor written at each run start, pause and end
            head_seq, _, head_hash = anchor[0].partition(":")
            if int(head_seq) > last:
                problems.append(
                    f"seq {last + 1}: the chain head anchor says {head_seq},"
                    f" the log ends at {last} (events deleted from the end)"
                )
            elif int(head_seq) in hashes and hashes[int(head_seq)] != head_hash:
                problems.append(f"seq {head_seq}: does not match the chain head anchor (edited)")
        elif rows:
            problems.append("the chain head anchor is missing (meta edited)")
        if head is not None:
            problems += _head_problems(head, hashes, last)
        facts = check.collect(row for row in rows if run_id is None or row[1] == run_id)
        problems += check.runs_problems(facts, runs)
        problems += check.records_problems(facts, records)
        problems += check.confirmations_problems(facts, confirmations)
        problems += check.leases_problems(facts, lease_rows)
        return problems


def _head_problems(head: str, hashes: dict[int, str], last: int) -> list[str]:
    """Whether the chain still holds a head recorded earlier (``SEQ:HASH`` or ``HASH``)."""
    seq_text, _, digest = head.strip().rpartition(":")
    digest = digest.lower()
    if seq_text:
        if not seq_text.isdigit():
            raise SopError(f"--head {head!r}: expected SEQ:HASH (as `sop journal head` prints)")
        seq = int(seq_text)
        if seq > last:
            return [f"seq {seq}: the recorded head is past the log's end ({last}) (truncated)"]
        if hashes.get(seq) != digest:
            return [f"seq {seq}: not the recorded head {digest[:16]}... (chain rewritten)"]
        return []
    if digest not in hashes.values():
        return [f"the recorded head {digest[:16]}... is not in the chain (rewritten or truncated)"]
    return []


def _run_row(row: tuple[Any, ...]) -> RunRow:
    return RunRow(
        run_id=row[0],
        sop=row[1],
        sop_path=row[2],
        version=row[3],
        content_hash=row[4],
        params=json.loads(row[5]),
        handlers=json.loads(row[6]),
        parent_run_id=row[7],
        status=row[8],
        pid=row[9],
        started=row[10],
        updated=row[11],
    )


def expiry(ttl_seconds: float) -> float:
    """Epoch seconds ``ttl_seconds`` from now (confirmation tokens)."""
    return time.time() + ttl_seconds
