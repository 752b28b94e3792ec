"""One open journal per path per process, for the Python API.

``engine.run`` / ``engine.resume`` without a ``journal=`` used to open SQLite, read
the schema and close it again on every call (~7 ms of a 33-action run's ~11 ms).
``JOURNALS`` keeps each path's journal open between calls and shares it between
threads (``Journal`` serialises its writers under one lock). An entry is checked out
while a run uses it (``acquire``/``release``, or ``using``): idle entries beyond
``IDLE_LIMIT`` are closed least recently used first, one whose file was deleted or
replaced since is reopened, a forked child opens its own, and what is still open is
closed at exit (flushing, releasing leases).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from engine.storage.base import Store
from engine.storage.journal import Journal
from engine.storage.location import database_url, default_path

#: Idle journals kept open (each holds a connection and its file descriptors).
IDLE_LIMIT = 8

_FileId = tuple[int, int] | None


def _file_id(path: str) -> _FileId:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)


@dataclass
class _Entry:
    store: Store
    file_id: _FileId  # the file as last seen: another one there means reopen
    users: int = 0
    stale: bool = False  # replaced in the registry: closed when its last user leaves


def _lazy_journal(path: str | Path) -> Store:
    return Journal(path, lazy=True)


class Journals:
    """Open journals by path, shared by the threads of this process."""

    def __init__(self, opener: Callable[[str | Path], Store] | None = None) -> None:
        self._opener = opener if opener is not None else _lazy_journal
        self._lock = threading.Lock()
        #: by absolute path, least recently used first
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._stale: list[_Entry] = []  # replaced while in use: closed when given back
        self._pid = os.getpid()

    def acquire(self, path: str | Path | None = None) -> Store:
        """The journal at ``path`` (default: ``location.default_path()``), checked out
        until ``release``. Opening is lazy: nothing is created until it is written."""
        where = path if path is not None else default_path()
        url = database_url(where)
        key = url if url is not None else os.path.abspath(where)
        file_id = _file_id(key)
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's connections are not
                self._entries.clear()  # ours to use (SQLite forbids it) nor to close
                self._stale.clear()
                self._pid = os.getpid()
            entry = self._entries.get(key)
            if entry is not None and entry.file_id != file_id:
                self._retire(key, entry)
                entry = None
            if entry is None:
                entry = _Entry(self._opener(key if url is not None else Path(key)), file_id)
                self._entries[key] = entry
            self._entries.move_to_end(key)
            entry.users += 1
            return entry.store

    def release(self, store: Store) -> None:
        """Give back a journal from ``acquire``; it stays open for the next caller."""
        with self._lock:
            entry = next(e for e in (*self._entries.values(), *self._stale) if e.store is store)
            entry.users -= 1
            if entry.users == 0 and entry.stale:
                self._stale.remove(entry)
                self._close(entry)
            elif entry.users == 0:
                entry.file_id = _file_id(store.location)  # created by this use, perhaps
                self._trim()

    @contextmanager
    def using(self, path: str | Path | None = None) -> Iterator[Store]:
        store = self.acquire(path)
        try:
            yield store
        finally:
            self.release(store)

    def close(self) -> None:
        """Close every journal no run is using (all of them at exit)."""
        with self._lock:
            for key, entry in list(self._entries.items()):
                if entry.users == 0:
                    del self._entries[key]
                    self._close(entry)

    def _retire(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        if entry.users:
            entry.stale = True
            self._stale.append(entry)
        else:
            self._close(entry)

    def _trim(self) -> None:
        idle = [key for key, entry in self._entries.items() if entry.users == 0]
        for key in idle[: max(0, len(idle) - IDLE_LIMIT)]:
            self._close(self._entries.pop(key))

    @staticmethod
    def _close(entry: _Entry) -> None:
        entry.store.close()


#: The process's journals (``engine.run`` / ``engine.resume`` without ``journal=``).
JOURNALS = Journals()
atexit.register(JOURNALS.close)
