"""Background WAL checkpoints for the journal.

SQLite's automatic checkpoint runs inside whichever commit crosses its threshold
and, with ``synchronous=NORMAL``, fsyncs the WAL and the database file: on this
project's 2-core VM about 15 ms once every ~1,000 commits, more than half of what
a runner's per-action commit costs on average. Here a daemon thread with its own
connection runs ``PRAGMA wal_checkpoint(PASSIVE)`` every ``every`` commits, so that
fsync happens beside the run instead of inside it (sqlite3 releases the GIL while
it works). PASSIVE never blocks the writer. SQLite's own automatic checkpoint stays
on at a higher threshold as the backstop that bounds the WAL when commits never
pause long enough for a background checkpoint to finish.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

#: Frames (pages) in the WAL before the committing connection checkpoints itself.
BACKSTOP_FRAMES = 8000
#: Commits between two background checkpoints.
EVERY = 256


class Checkpointer:
    """Counts a journal's commits and checkpoints its WAL in a thread of its own."""

    def __init__(self, path: Path, synchronous: str, every: int = EVERY) -> None:
        self._path = path
        self._synchronous = synchronous
        self._every = every
        self._count = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        """Called by the writer after each commit (under the journal's lock)."""
        self._count += 1
        if self._count < self._every:
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
                except sqlite3.Error:  # busy or gone: the backstop still bounds the WAL
                    continue
        finally:
            db.close()
