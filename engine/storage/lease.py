"""Run leases: one process owns a run at a time.

A lease is a row in the journal (run id, owner pid, host, a random token, since, an
expiry). The journal takes it atomically (``Journal.acquire_lease``); this module
holds what does not depend on the storage: who we are, whether an owner is still
alive, when a lease may be taken over, and the heartbeat that keeps ours fresh.

Takeover: an owner on this host whose pid is gone is taken over at once; an owner on
this host whose pid is alive is respected whatever the expiry says (a handler stuck
in C code may keep the heartbeat from running; a second execution is worse than a
wait); an owner on another host is taken over only once its lease has expired.

Why a heartbeat thread and not renewal at each commit: a handler may run for minutes
(an action timeout of 120 s, or none) without committing, and a lease that expired
while its owner was inside a handler would let another host run the same action.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.errors import SopError
from engine.execution.settings import seconds

DEFAULT_TTL = 30.0

#: Tokens of the leases this process holds now (any journal, any thread): a lease row
#: with this process's pid and a token not in here was left by a holder that is gone.
LIVE_TOKENS: set[str] = set()


def ttl_seconds() -> float:
    """How long a lease lives without renewal (``SOP_LEASE_SECONDS``, default 30)."""
    return seconds("SOP_LEASE_SECONDS", DEFAULT_TTL)


def host() -> str:
    return socket.gethostname()


def new_token() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Lease:
    run_id: str
    token: str
    pid: int
    host: str
    since: float
    expires_at: float

    def owner(self) -> str:
        """``pid@host since ISO-TIME``: how refusals name the owner."""
        since = datetime.fromtimestamp(self.since, UTC).isoformat(timespec="seconds")
        return f"pid {self.pid}@{self.host} since {since}"


class LeaseHeld(SopError):
    """Another live process owns the run."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        super().__init__(
            f"run {lease.run_id} is owned by {lease.owner()}; refusing to run it twice"
            " (resume it once that process has ended)"
        )


class LeaseLost(SopError):
    """Our lease was taken over (we were frozen past its expiry): stop journaling the run."""


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def holder_alive(lease: Lease | None, now: float) -> bool:
    """Whether a live process holds ``lease`` (None: nobody does). Read side of the rules
    above: a run not finished whose lease no live holder has is interrupted."""
    return lease is not None and not may_take_over(lease, now)


def may_take_over(lease: Lease, now: float) -> bool:
    """Whether a lease held by someone else may be taken (see the module docstring)."""
    if lease.host == host():
        if lease.pid == os.getpid():  # this process: alive only while a holder keeps it
            return lease.token not in LIVE_TOKENS
        return not pid_alive(lease.pid)
    return now >= lease.expires_at


class Heartbeat:
    """A daemon thread that calls ``renew`` every ``interval`` seconds until closed."""

    def __init__(self, renew: Callable[[], None], interval: float) -> None:
        self._renew = renew
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, name="sop-lease-heartbeat", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _work(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._renew()
            except Exception:  # a busy or closed database: the next beat tries again
                continue


def now() -> float:
    return time.time()
