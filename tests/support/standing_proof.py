"""Shared helpers of the standing proof (issue 9): scale, figures, sandbox and journal probes.

``SOP_SOAK=1`` scales every count up from the short version ``make test`` runs to the
full one ``make soak`` runs. Every test records its figures with ``figure(...)``; the
reliability conftest prints them at the end of the session (and writes them as JSON to
``SOP_RELIABILITY_FIGURES`` when that is set), which is where the README's table comes from.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import sqlite3
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from handlers.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]
SOAK = os.environ.get("SOP_SOAK", "") not in ("", "0")
SEED = int(os.environ.get("SOP_RELIABILITY_SEED", "9"))

#: part -> {figure name -> value}, in the order they were recorded.
FIGURES: dict[str, dict[str, Any]] = defaultdict(dict)


def scaled(short: int, soak: int) -> int:
    """``short`` under ``make test``, ``soak`` under ``make soak`` (SOP_SOAK=1)."""
    return soak if SOAK else short


def figure(part: str, **values: Any) -> None:
    """Record figures of one part of the proof (printed in the terminal summary)."""
    FIGURES[part].update(values)
    print(f"[{part}] " + ", ".join(f"{k}={v}" for k, v in values.items()))


# -- the CLI in-process (fast) ------------------------------------------------------------


def sop_inproc(*args: str) -> tuple[int, str, str]:
    """``sop ARGS`` through ``engine.cli.main`` in this process: (exit code, stdout, stderr)."""
    from engine.cli import main as cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(list(args))
        except SystemExit as exc:  # argparse
            code = exc.code if isinstance(exc.code, int) else 2
    return code, out.getvalue(), err.getvalue()


# -- the sandbox ---------------------------------------------------------------------------


def new_customer(sandbox: Sandbox, email: str = "proof@example.invalid") -> str:
    """A customer with a default Visa test card, created outside any fault."""
    client = sandbox.client()
    customer = client.v1.customers.create({"email": email})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return str(customer.id)


def new_plan(sandbox: Sandbox) -> str:
    plan = sandbox.client().v1.plans.create(
        {"amount": 1500, "currency": "usd", "interval": "month", "product": {"name": "Proof"}}
    )
    return str(plan.id)


def _all(listing: Any) -> Iterator[dict[str, Any]]:
    for item in listing.auto_paging_iter():
        yield item.to_dict()


def objects_by_run(sandbox: Sandbox, kind: str) -> dict[str, list[str]]:
    """Stripe objects of ``kind`` (payment_intents, refunds, subscriptions) by the
    ``sop_run_id`` in their metadata (objects without one under "")."""
    api = getattr(sandbox.client().v1, kind)
    found: dict[str, list[str]] = defaultdict(list)
    for obj in _all(api.list({"limit": 100})):
        run_id = (obj.get("metadata") or {}).get("sop_run_id", "")
        found[run_id].append(obj["id"])
    return dict(found)


def effects_per_key(requests: Iterable[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """How many times each (path, Idempotency-Key) POST actually reached localstripe."""
    effects: Counter[tuple[str, str]] = Counter()
    for r in requests:
        if r["method"] == "POST" and r["idempotency_key"] and r["forwarded"] and not r["replayed"]:
            effects[(r["path"], r["idempotency_key"])] += 1
    return effects


def posts(requests: Iterable[Mapping[str, Any]], path: str) -> list[Mapping[str, Any]]:
    return [r for r in requests if r["method"] == "POST" and r["path"] == path]


# -- the journal ----------------------------------------------------------------------------


def lost_events(db: Path, run_id: str, actions: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a finished run's result says happened but its journal does not show."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT type, action_id FROM events WHERE run_id=? ORDER BY seq", (run_id,)
        ).fetchall()
    types = Counter(t for t, _ in rows)
    started = {a for t, a in rows if t == "action_started"}
    finished = {a for t, a in rows if t == "action_finished"}
    lost = [f"{run_id}: no run_started"] if not types["run_started"] else []
    if not types["run_finished"]:
        lost.append(f"{run_id}: no run_finished")
    for action in actions:
        if action.get("attempts", 0) and action["status"] not in ("pending",):
            for what, seen in (("started", started), ("finished", finished)):
                if action["id"] not in seen:
                    lost.append(f"{run_id}: {action['id']} has no action_{what}")
    return lost


def journal_bytes(db: Path) -> bytes:
    """The journal's bytes on disk: the database and its WAL (and shared-memory index)."""
    return b"".join(
        p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists()
    )


# -- secrets ---------------------------------------------------------------------------------


def digit_forms(digits: str) -> list[bytes]:
    """``digits`` as bytes in every formatting a leak could take: plain, spaced, dashed,
    dotted, and with any single separator between groups of 4 (card layout)."""
    groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    forms = {digits, " ".join(groups), "-".join(groups), ".".join(groups), "_".join(groups)}
    return sorted({f.encode() for f in forms})


def leaks(blob: bytes, secrets: Iterable[str]) -> list[str]:
    """Each secret (card digits, CVC in context, API key) found in ``blob``, however spaced."""
    found: list[str] = []
    squeezed = re.sub(rb"[\s\-._]", b"", blob)
    for secret in secrets:
        if secret.isdigit() and len(secret) >= 12:  # a card number: any formatting
            if secret.encode() in squeezed:
                found.append(secret)
        elif secret.encode() in blob:
            found.append(secret)
    return found


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)[:4000]


class CliWorker:
    """``cli_worker.py`` as a subprocess: ``call(argv)`` with a time bound per call.

    A call that overruns ``bound`` seconds kills the worker (a fresh one serves the next
    call) and returns ``{"hang": True, ...}``.
    """

    def __init__(self, env: Mapping[str, str], cwd: Path) -> None:
        self.env = dict(env)
        self.cwd = cwd
        self._proc: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("cli_worker.py"))],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                bufsize=1,
            )
            assert self._proc.stdout is not None
            ready, _, _ = select.select([self._proc.stdout], [], [], 120)
            if not ready or "ready" not in self._proc.stdout.readline():
                self.close()
                raise RuntimeError("the sop worker did not start")
        return self._proc

    def call(self, argv: list[str], bound: float, trace: bool = False) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"argv": argv, "trace": trace}) + "\n")
        proc.stdin.flush()
        readable, _, _ = select.select([proc.stdout], [], [], bound)
        line = proc.stdout.readline() if readable else ""
        if not line:
            self.close()
            return {"hang": True, "code": None, "stderr": "", "crash": None, "seconds": bound}
        result: dict[str, Any] = json.loads(line)
        result["hang"] = False
        return result

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> CliWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
