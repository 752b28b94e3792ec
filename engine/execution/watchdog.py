"""The timeout layer: a run's actions execute in a worker thread while the calling
thread watches the deadline of the handler call in progress.

Handlers run in a worker thread (the run's whole walk runs there, so there is no
thread hand-off per action; starting that thread costs ~0.1 ms a run, ~3 us an action
of the seed SOP, so threads are not pooled) while the calling thread sleeps until
the armed deadline (HandlerDef.timeout, else
SOP_ACTION_TIMEOUT_SECONDS, default 120; 0 = none). Python cannot kill a thread: a
handler that times out keeps running in the background until it returns, and its
late writes to ``ctx.state`` / ``ctx.output`` may still land. The watchdog calls the
deadline's ``expired`` callback (the run fails that action, "timed out after N s")
and starts the job again in another worker; the abandoned worker raises
``Abandoned`` at its next check and journals nothing more for the run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Abandoned(BaseException):
    """Raised in a worker whose handler timed out: another worker has taken the run over."""


class Watchdog:
    """Runs a job in worker threads, one at a time, and enforces the deadline it arms.

    ``tick``: the smallest timeout any call may arm (None: no call has one). The
    watchdog never sleeps longer, so a deadline armed while it sleeps is never earlier
    than its wake-up and arming needs no notification.
    """

    def __init__(self, tick: float | None) -> None:
        #: guards the job's shared state too: the walk settles each line under it
        self.lock = threading.RLock()
        self._cond = threading.Condition(self.lock)
        self._tick = tick
        self._generation = 0
        self._deadline: float | None = None
        self._expired: Callable[[], None] | None = None
        self._finished = False
        self._stopped = False
        self._error: BaseException | None = None

    def run(self, job: Callable[[int], None]) -> None:
        """Run ``job(generation)`` until it returns; re-raise what it raised.

        When an armed deadline passes, the ``expired`` callback runs (under the lock)
        and ``job`` starts again in a fresh worker with a new generation: the job keeps
        its own position, so it continues after the action that timed out.
        """
        self._spawn(job)
        try:
            with self._cond:
                while not self._finished and self._error is None:
                    now = time.monotonic()
                    deadline, expired = self._deadline, self._expired
                    if deadline is not None and expired is not None and now >= deadline:
                        self._generation += 1
                        self._deadline = self._expired = None
                        expired()
                        self._spawn(job)
                        continue
                    wait = self._tick
                    if deadline is not None:
                        wait = min(deadline - now, wait or deadline - now)
                    self._cond.wait(wait)
        except BaseException:
            with self._cond:
                self._stopped = True  # the caller is gone (e.g. KeyboardInterrupt)
            raise
        if self._error is not None:
            raise self._error

    def check(self, generation: int) -> None:
        """Under the lock: raise Abandoned when this worker no longer owns the run."""
        if generation != self._generation or self._stopped:
            raise Abandoned

    def arm(self, generation: int, timeout: float, expired: Callable[[], None]) -> None:
        """Before a handler call: ``expired`` runs if the call outlives ``timeout`` (0: never)."""
        with self.lock:
            self.check(generation)
            self._deadline = time.monotonic() + timeout if timeout > 0 else None
            self._expired = expired if timeout > 0 else None

    def disarm(self, generation: int) -> None:
        """After a handler call: Abandoned when it timed out meanwhile (the watchdog settled it)."""
        with self.lock:
            if generation != self._generation:
                raise Abandoned
            self._deadline = self._expired = None

    def _spawn(self, job: Callable[[int], None]) -> None:
        worker = threading.Thread(
            target=self._work, args=(job, self._generation), name="sop-run", daemon=True
        )
        worker.start()

    def _work(self, job: Callable[[int], None], generation: int) -> None:
        try:
            job(generation)
        except Abandoned:
            return
        except BaseException as exc:
            with self._cond:
                if generation == self._generation:
                    self._error = exc
                    self._cond.notify_all()
            return
        with self._cond:
            if generation == self._generation:
                self._finished = True
                self._cond.notify_all()
