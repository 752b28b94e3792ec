"""Floors the engine's per-step cost is compared with, measured in the same rounds.

``BareCommits``: the cheapest durable append (one row, one WAL commit). ``ContractFloor``:
the journal's contract alone in plain Python (key, canonical JSON, hash chain, one commit
per action), what any Python engine keeping this journal pays before doing anything else.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path


class BareCommits:
    """The cheapest durable append there is: one row, one WAL commit, no engine at all
    (SQLite's defaults, automatic checkpoints included)."""

    def __init__(self, directory: Path) -> None:
        self.db = sqlite3.connect(directory / "floor.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, run_id TEXT, data TEXT)")
        self.row = ("r" * 32, '{"attempt":1,"idempotency_key":"18d07684-7671-5030-b327-03fa5454"}')

    def seconds_each(self, count: int) -> float:
        db, row = self.db, self.row
        started = time.perf_counter()
        for _ in range(count):
            db.execute("INSERT INTO events(run_id, data) VALUES (?, ?)", row)
        return (time.perf_counter() - started) / count


class ContractFloor:
    """The journal contract alone, in plain Python: what any Python engine keeping this
    journal pays per action before it does anything else.

    Per action: a uuid5 idempotency key, the UTC timestamp, canonical JSON for the
    ``action_started`` body and the previous action's ``action_finished`` body, a sha256
    link for each, and both rows in one multi-row INSERT committed before the (no-op)
    handler runs, into a table shaped like the engine's ``events``. No engine code: no
    planning, redaction, state deltas, retries, timeout watchdog, cancel check, result
    objects, run rows or leases.
    """

    _SQL = "INSERT INTO events VALUES " + ",".join(["(?,?,?,?,?,?,?,?)"] * 2)

    def __init__(self, directory: Path) -> None:
        self.db = sqlite3.connect(directory / "contract.db", isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE events (seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, ts TEXT NOT"
            " NULL, type TEXT NOT NULL, action_id TEXT, data TEXT NOT NULL, prev_hash TEXT"
            " NOT NULL, hash TEXT NOT NULL)"
        )
        self.encode = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
        self.seq, self.prev = 0, "0" * 64

    def seconds_each(self, count: int) -> float:
        run_id = uuid.uuid4().hex
        finished = ("action_finished", "s0.l0", self.encode({"result": {"status": "passed"}}))
        started_at = time.perf_counter()
        for n in range(count):
            action_id = f"s{n % 9}.l{n}"
            key = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}\x1f{action_id}"))
            ts = datetime.now(UTC).isoformat(timespec="microseconds")
            started = ("action_started", action_id, self.encode({"attempt": 1, "key": key}))
            rows: list[object] = []
            for type_, aid, data in (finished, started):
                self.seq += 1
                fields = (self.prev, str(self.seq), run_id, ts, type_, aid, data)
                digest = hashlib.sha256("\x1f".join(fields).encode()).hexdigest()
                rows.extend((self.seq, run_id, ts, type_, aid, data, self.prev, digest))
                self.prev = digest
            self.db.execute(self._SQL, rows)
            result = {"attempts": 1, "duration_ms": 0.004, "reason": None, "status": "passed"}
            finished = ("action_finished", action_id, self.encode({"result": result}))
        return (time.perf_counter() - started_at) / count
