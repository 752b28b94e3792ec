"""Background WAL checkpoints for the journal.

SQLite's automatic checkpoint runs inside whichever commit crosses its threshold
(1,000 pages) and, with ``synchronous=NORMAL``, copies those pages and fsyncs the
WAL and the database file: on this project's 2-core VM about 15 ms once every
~1,000 commits, more than half of what a runner's per-action commit costs on
average. Here a daemon thread with its own connection runs
``PRAGMA wal_checkpoint(PASSIVE)`` every ``every`` commits, so most of that copying
and syncing happens beside the run instead of inside it (sqlite3 releases the GIL
while it works; PASSIVE never blocks the writer). SQLite's automatic checkpoint
stays on: a WAL is only reset by a checkpoint that finds no newer frames, which
back-to-back commits never leave to a background one, and the inline checkpoint
that does it has little left to copy or sync.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

#: Commits between two background checkpoints.
EVERY = 256


class Checkpointer:
    """Counts a journal's commits and checkpoints its WAL in a thread of its own."""

    def __init__(self, path: Path | None, synchronous: str, every: int | None = None) -> None:
        """``path`` None: a database with no WAL file of ours (PostgreSQL), never checkpointed."""
        self._path = path
        self._synchronous = synchronous
        self._every = EVERY if every is None else every
        self._count = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """Called by the writer after each commit (under the journal's lock)."""
        self._count += 1
        if self._count < self._every or self._path is None:
            return
        self._count = 0
        if self._thread is None:  # short-lived journals never start one
            self._thread = threading.Thread(
                target=self._work, name="sop-journal-checkpoint", daemon=True
            )
            self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()

    def _work(self) -> None:
        db = sqlite3.connect(str(self._path), isolation_level=None, timeout=30.0)
        try:
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._closed:
                    return
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:  # busy or gone: SQLite's own checkpoint still bounds the WAL
                    continue
        finally:
            db.close()
