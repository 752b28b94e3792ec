"""Reusable worker threads for run loops.

Starting a thread costs ~140-340 us on a small VM, a hand-off to a parked one ~17 us;
a run needs its own thread (so the caller can watch the deadline of a handler that
hangs), so runs borrow parked threads instead of starting one each. A worker whose
job is still stuck in a handler is simply busy: the next run borrows another, and
the stuck one parks again when (if ever) its handler returns.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from queue import SimpleQueue

#: Parked workers beyond this many exit instead of waiting for more work.
MAX_IDLE = 4

_idle: list[_Worker] = []
_idle_lock = threading.Lock()


class _Worker(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="sop-run-worker", daemon=True)
        self.inbox: SimpleQueue[Callable[[], None] | None] = SimpleQueue()

    def run(self) -> None:
        inbox = self.inbox
        while True:
            job = inbox.get()
            if job is None:
                return
            job()  # a job reports its own errors to its run; a bug escaping it ends this worker
            del job
            with _idle_lock:
                if len(_idle) >= MAX_IDLE:
                    return
                _idle.append(self)


def submit(job: Callable[[], None]) -> None:
    """Run ``job`` in a parked worker, or in a new one when none is free."""
    with _idle_lock:
        worker = _idle.pop() if _idle else None
    if worker is None:
        worker = _Worker()
        worker.start()
    worker.inbox.put(job)


def _forget_after_fork() -> None:
    """A forked child has none of the parent's threads: parked workers are not there."""
    global _idle_lock
    _idle.clear()
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
