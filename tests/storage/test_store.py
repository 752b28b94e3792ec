"""The runner depends on the ``Store`` protocol only (engine.storage.base).

``Forwarding`` implements exactly the protocol, method by method, over a SQLite
``Journal``, and counts the calls: a run that pauses for confirmation, its resume and
its inspection go through it, so the runner, resume and confirmation touch nothing a
second backend would not have (a private attribute or an extra method would raise
AttributeError here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import engine
from engine.storage.base import Confirmation, Event, RunRow, StartedRun, Store
from engine.storage.journal import Journal
from engine.storage.lease import Lease
from engine.storage.runids import resolve_run_id

SOP = """\
# Refund Demo SOP

**Version**: 0.1.0

## Overview

Refunds an amount; refunds above $100 wait for a person to confirm.

## Parameters

- **amount** (integer): Amount in cents

## Steps

### 1. Refund

**Actions**:
- MUST require confirmation for refunds > $100
- MUST issue the refund
"""


class Forwarding:
    """Every ``Store`` method, forwarded to a ``Journal``; nothing else."""

    def __init__(self, inner: Journal) -> None:
        self._inner = inner
        self.location = inner.location
        self.calls: Counter[str] = Counter()

    def _note(self, name: str) -> Journal:
        self.calls[name] += 1
        return self._inner

    def close(self) -> None:
        self._note("close").close()

    def __enter__(self) -> Forwarding:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

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
        inner = self._note("append")
        return inner.append(run_id, type_, action_id, data, raw=raw, status=status, defer=defer)

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
        inner = self._note("append_text")
        return inner.append_text(run_id, type_, action_id, text, status=status, defer=defer)

    def flush(self) -> None:
        self._note("flush").flush()

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
        self._note("start_run").start_run(
            run_id,
            sop=sop,
            sop_path=sop_path,
            version=version,
            content_hash=content_hash,
            params=params,
            handlers=handlers,
            parent_run_id=parent_run_id,
        )

    def claim(self, run_id: str, type_: str, data: Mapping[str, Any] | None = None) -> None:
        self._note("claim").claim(run_id, type_, data)

    def add_record(
        self,
        run_id: str,
        action_id: str | None,
        kind: str,
        data: Mapping[str, Any],
        *,
        key: str | None = None,
    ) -> bool:
        return self._note("add_record").add_record(run_id, action_id, kind, data, key=key)

    def acquire_lease(self, run_id: str) -> Lease | None:
        return self._note("acquire_lease").acquire_lease(run_id)

    def release_lease(self, run_id: str) -> None:
        self._note("release_lease").release_lease(run_id)

    def lease(self, run_id: str) -> Lease | None:
        return self._note("lease").lease(run_id)

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
        self._note("add_confirmation").add_confirmation(
            run_id,
            action_id,
            token_hash=token_hash,
            operation_hash=operation_hash,
            expires_at=expires_at,
            data=data,
        )

    def use_confirmation(self, token_hash: str, data: Mapping[str, Any] | None = None) -> bool:
        return self._note("use_confirmation").use_confirmation(token_hash, data)

    def cancel_request(self, run_id: str) -> Event | None:
        return self._note("cancel_request").cancel_request(run_id)

    def confirmation(self, token_hash: str) -> Confirmation | None:
        return self._note("confirmation").confirmation(token_hash)

    def started(self, run_id: str) -> StartedRun | None:
        return self._note("started").started(run_id)

    def verified_run(self, run_id: str) -> StartedRun:
        return self._note("verified_run").verified_run(run_id)

    def run(self, run_id: str) -> RunRow | None:
        return self._note("run").run(run_id)

    def events(self, run_id: str) -> list[Event]:
        return self._note("events").events(run_id)

    def records(self, run_id: str) -> list[dict[str, Any]]:
        return self._note("records").records(run_id)

    def children(self, run_id: str) -> list[RunRow]:
        return self._note("children").children(run_id)

    def runs(self, limit: int | None = None) -> list[RunRow]:
        return self._note("runs").runs(limit)

    def run_ids_starting(self, prefix: str, limit: int) -> list[str]:
        return self._note("run_ids_starting").run_ids_starting(prefix, limit)

    def runs_with_idempotency_key(self, sop: str, keys: Sequence[str]) -> list[RunRow]:
        return self._note("runs_with_idempotency_key").runs_with_idempotency_key(sop, keys)

    def head(self) -> tuple[int, str]:
        return self._note("head").head()

    def verify(self, *, run_id: str | None = None, head: str | None = None) -> list[str]:
        return self._note("verify").verify(run_id=run_id, head=head)


def test_a_paused_run_and_its_resume_go_through_the_protocol_only(
    tmp_path: Path, location: str
) -> None:
    (tmp_path / "refund-demo.sop.md").write_text(SOP, encoding="utf-8")
    registry = engine.Registry()
    refunds: list[int] = []

    @registry.action("require confirmation for refunds > ${threshold:d}")
    def confirm_large_refund(ctx: Any, threshold: int) -> None:
        if ctx.params["amount"] > threshold * 100 and not ctx.confirmed:
            raise engine.ConfirmationRequired("confirm", operation={"amount": ctx.params["amount"]})

    @registry.action("issue the refund")
    def issue_refund(ctx: Any) -> None:
        refunds.append(ctx.params["amount"])
        ctx.record("refund", {"amount": ctx.params["amount"]})

    forwarding = Forwarding(Journal(location))
    store: Store = forwarding  # mypy checks it is a Store
    sop = str(tmp_path / "refund-demo.sop.md")
    paused = engine.run(sop, {"amount": 15000}, registry=registry, journal=store)
    assert paused.status.value == "paused" and paused.pending is not None
    done = engine.resume(
        paused.run_id, confirm=paused.pending["token"], registry=registry, journal=store
    )
    assert done.ok, done.errors
    assert refunds == [15000]
    with store:
        assert store.verify() == []
        assert [row.status for row in store.runs()] == ["succeeded"]
        assert len(store.records(paused.run_id)) == 1
        assert resolve_run_id(store, paused.run_id[:6]) == paused.run_id  # a prefix names it
    assert {"start_run", "add_confirmation", "use_confirmation", "acquire_lease"} <= set(
        forwarding.calls
    )
