"""The seed charge through the real ``sop`` command with its journal on PostgreSQL.

``--journal postgresql://...`` and ``SOP_JOURNAL=postgresql://...`` select the backend;
the charge reaches the sandbox once, a paused refund is confirmed by a second process,
``sop runs``/``sop inspect`` read the runs back, and ``sop journal verify`` passes on the
database (and fails once an event is edited in it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.journal_sql import execute
from tests.support.postgres import Postgres
from tests.support.standing_proof import new_customer

ROOT = Path(__file__).resolve().parents[2]


def _posts(sandbox: Sandbox, path: str) -> list[dict[str, Any]]:
    return [r for r in sandbox.requests() if r.get("method") == "POST" and r["path"] == path]


def test_seed_charge_runs_and_verifies_on_postgresql(
    sandbox: Sandbox, postgres_cluster: Postgres, tmp_path: Path
) -> None:
    url = postgres_cluster.database()
    env = {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")}
    customer = new_customer(sandbox)

    charge = sop_cli("run", "payment-processing", "-p", "operation=charge", "-p",
                     f"customer_id={customer}", "-p", "amount=20000", "--json",
                     "--journal", url, cwd=ROOT, env=env)  # fmt: skip
    assert charge.returncode == 0, charge.stderr
    done = json.loads(charge.stdout)
    pi = done["output"]["transaction_id"]
    assert len(_posts(sandbox, "/v1/payment_intents")) == 1

    by_env = {**env, "SOP_JOURNAL": url}  # the other way to select it
    refund = sop_cli("run", "payment-processing", "-p", "operation=refund", "-p",
                     f"customer_id={customer}", "-p", f"payment_intent={pi}", "-p",
                     "amount=15000", "--json", cwd=ROOT, env=by_env)  # fmt: skip
    assert refund.returncode == 3, refund.stderr
    paused = json.loads(refund.stdout)
    assert _posts(sandbox, "/v1/refunds") == []
    confirmed = sop_cli("resume", paused["run_id"][:8], "--confirm", paused["pending"]["token"],
                        cwd=ROOT, env=by_env)  # fmt: skip
    assert confirmed.returncode == 0, confirmed.stderr
    assert len(_posts(sandbox, "/v1/refunds")) == 1

    runs = sop_cli("runs", "--json", cwd=ROOT, env=by_env)
    assert runs.returncode == 0, runs.stderr
    listed = {row["run_id"]: row["status"] for row in json.loads(runs.stdout)}
    assert listed == {done["run_id"]: "succeeded", paused["run_id"]: "succeeded"}
    inspect = sop_cli("inspect", done["run_id"], "--json", cwd=ROOT, env=by_env)
    assert inspect.returncode == 0, inspect.stderr
    types = [event["type"] for event in json.loads(inspect.stdout)["events"]]
    assert types[0] == "run_started" and types[-1] == "run_finished"

    verify = sop_cli("journal", "verify", "--journal", url, cwd=ROOT, env=env)
    assert verify.returncode == 0, verify.stderr
    assert "intact" in verify.stdout and "postgresql:" in verify.stdout
    assert not (ROOT / "postgresql:").exists()  # a URL, never a file path

    execute(url, "UPDATE events SET type='action_skipped' WHERE seq=3")
    broken = sop_cli("journal", "verify", "--journal", url, cwd=ROOT, env=env)
    assert broken.returncode == 1
    assert "broken: seq 3:" in broken.stderr and "Traceback" not in broken.stderr


def test_an_unreachable_database_is_one_line(tmp_path: Path, postgres_cluster: Postgres) -> None:
    url = f"postgresql://postgres@127.0.0.1:{postgres_cluster.port}/no_such_database"
    proc = sop_cli("runs", "--journal", url, cwd=tmp_path)
    assert proc.returncode != 0
    assert proc.stderr.startswith("sop: error: cannot open journal postgresql:")
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_the_socket_form_of_the_url_reaches_the_local_server(
    postgres_cluster: Postgres, tmp_path: Path
) -> None:
    """``postgresql:///db?host=/socket/dir`` (no host: the local socket) stays a URL everywhere;
    as a ``Path`` it used to fold into ``postgresql:/db`` and name a host called ``db``."""
    name = postgres_cluster.database().rsplit("/", 1)[1]
    url = postgres_cluster.socket_url(name)
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "note.sop.md").write_text(_NOTE)
    (tmp_path / "note_handlers.py").write_text(_NOTE_HANDLERS)
    env = {"SOP_JOURNAL": url}
    ran = sop_cli("run", "note", "-p", "text=hi", "--handlers", "note_handlers", "--json",
                  cwd=tmp_path, env=env)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    assert execute(postgres_cluster.url(name), "SELECT run_id FROM runs") == [(run_id,)]
    listed = sop_cli("runs", "--json", "--journal", url, cwd=tmp_path)
    assert [row["run_id"] for row in json.loads(listed.stdout)] == [run_id], listed.stderr
    verify = sop_cli("journal", "verify", cwd=tmp_path, env=env)
    assert verify.returncode == 0 and "journal postgresql:///" in verify.stdout, verify.stderr
    assert not any(p.name.startswith("postgres") for p in tmp_path.rglob("*"))  # no stray file


_NOTE = """\
# Note

## Overview

Keeps a note.

## Parameters

### Required

- **text** (string): The note

## Steps

### 1. Keep

**Actions**:
- You MUST keep the note
"""

_NOTE_HANDLERS = """\
from engine import RunContext, action


@action("keep the note")
def keep(ctx: RunContext) -> None:
    ctx.state["kept"] = True
"""
