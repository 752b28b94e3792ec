"""The status a person is shown for a run: the journal's, except that a run still marked
``running`` whose lease no live process holds is ``interrupted``.

The journal's ``runs.status`` says what the last commit said; a process killed in the
middle of a run never gets to say anything else, so ``running`` alone would be shown
forever. The lease (``engine.storage.lease``) is what tells a live owner from a dead
one; nothing is written here: this is the read side only, and ``sop resume RUN_ID``
takes the run over.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from engine.storage.base import RunRow, Store
from engine.storage.lease import holder_alive, now

RUNNING = "running"
INTERRUPTED = "interrupted"


def current_status(store: Store, row: RunRow) -> str:
    """``row.status``, or ``interrupted`` when it is ``running`` and its owner is gone."""
    if row.status != RUNNING:
        return row.status
    return RUNNING if holder_alive(store.lease(row.run_id), now()) else INTERRUPTED


def current(store: Store, rows: Iterable[RunRow]) -> list[RunRow]:
    """``rows`` with each status as :func:`current_status` derives it."""
    out = []
    for row in rows:
        status = current_status(store, row)
        out.append(row if status == row.status else dataclasses.replace(row, status=status))
    return out


__all__ = ["INTERRUPTED", "RUNNING", "current", "current_status"]
