"""What the engine asks of a journal: the ``Store`` protocol and the records it returns.

The runner, resume, confirmation, ``sop runs``/``inspect`` and ``sop journal verify``
depend on this protocol, not on SQLite. ``engine.storage.journal.Journal`` implements
it on SQLite and, given a ``postgresql://`` URL, on PostgreSQL (``engine.storage.postgres``).
The contract a backend keeps (the exactly-once properties):

- ``append``/``append_text`` commit the event before returning (``defer=True``: with
  the next commit, which the runner makes before the next side effect);
- events form one hash chain (``engine.storage.verify.row_hash``) that ``verify``
  checks, with every table checked against the chained events;
- a run is owned through one lease at a time (``acquire_lease`` is atomic);
- a confirmation token is spent once (``use_confirmation`` is atomic);
- a ``cancel_requested`` event appended by any process is seen by ``cancel_request``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from engine.storage.lease import Lease


@dataclass(frozen=True)
class Event:
    seq: int
    run_id: str
    ts: str
    type: str
    action_id: str | None
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "type": self.type,
            "action_id": self.action_id,
            "data": self.data,
        }


@dataclass(frozen=True)
class RunRow:
    run_id: str
    sop: str
    sop_path: str | None
    version: str | None
    content_hash: str | None
    params: dict[str, Any]
    handlers: list[str]
    parent_run_id: str | None
    status: str
    pid: int | None
    started: str
    updated: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "sop": self.sop,
            "sop_path": self.sop_path,
            "version": self.version,
            "status": self.status,
            "parent_run_id": self.parent_run_id,
            "started": self.started,
            "updated": self.updated,
        }


@dataclass(frozen=True)
class Confirmation:
    token_hash: str
    run_id: str
    action_id: str
    operation_hash: str
    expires_at: float
    used_at: str | None


@dataclass(frozen=True)
class StartedRun:
    """A run as its chained events tell it: what resume and confirmation act on."""

    run_id: str
    sop: str
    sop_path: str | None
    version: str | None
    content_hash: str | None
    #: as journaled (redacted); exact only when ``redacted_params`` is empty
    params: dict[str, Any]
    handlers: list[str]
    parent_run_id: str | None
    status: str
    #: the seal of the run id and the exact parameters (``engine.execution.seal``; None: journaled
    #: before seals existed)
    params_sha256: str | None
    #: the parameters redaction altered before they were journaled
    redacted_params: list[str]


class Store(Protocol):
    """A durable run journal (see the module docstring for the contract)."""

    #: where it lives, as messages name it (a file, or a URL without its password)
    location: str

    def close(self) -> None: ...

    def __enter__(self) -> Store: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    # -- appending events -------------------------------------------------------------

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
    ) -> int: ...

    def append_text(
        self,
        run_id: str,
        type_: str,
        action_id: str | None,
        text: str,
        *,
        status: str | None = None,
        defer: bool = False,
    ) -> int: ...

    def flush(self) -> None: ...

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
    ) -> None: ...

    def claim(self, run_id: str, type_: str, data: Mapping[str, Any] | None = None) -> None: ...

    def add_record(
        self,
        run_id: str,
        action_id: str | None,
        kind: str,
        data: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> bool: ...

    # -- leases -----------------------------------------------------------------------

    def acquire_lease(self, run_id: str) -> Lease | None: ...

    def release_lease(self, run_id: str) -> None: ...

    def lease(self, run_id: str) -> Lease | None: ...

    # -- confirmations ----------------------------------------------------------------

    def add_confirmation(
        self,
        run_id: str,
        action_id: str,
        *,
        token_hash: str,
        operation_hash: str,
        expires_at: float,
        data: Mapping[str, Any],
    ) -> None: ...

    def use_confirmation(self, token_hash: str, data: Mapping[str, Any] | None = None) -> bool: ...

    def confirmation(self, token_hash: str) -> Confirmation | None: ...

    # -- cancellation -----------------------------------------------------------------

    def cancel_request(self, run_id: str) -> Event | None: ...

    # -- reading a run ----------------------------------------------------------------

    def started(self, run_id: str) -> StartedRun | None: ...

    def verified_run(self, run_id: str) -> StartedRun: ...

    def run(self, run_id: str) -> RunRow | None: ...

    def events(self, run_id: str) -> list[Event]: ...

    def records(self, run_id: str) -> list[dict[str, Any]]: ...

    def children(self, run_id: str) -> list[RunRow]: ...

    # -- listing runs -----------------------------------------------------------------

    def runs(self, limit: int | None = None) -> list[RunRow]: ...

    def run_ids_starting(self, prefix: str, limit: int) -> list[str]: ...

    def runs_with_idempotency_key(self, sop: str, keys: Sequence[str]) -> list[RunRow]: ...

    # -- integrity --------------------------------------------------------------------

    def head(self) -> tuple[int, str]: ...

    def verify(self, *, run_id: str | None = None, head: str | None = None) -> list[str]: ...
