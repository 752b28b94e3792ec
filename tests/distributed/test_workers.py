"""Runs on real ``sop worker`` processes over a real Redis, the journal on PostgreSQL.

Submit -> a worker executes -> another process reads it finished; a worker SIGKILLed in
the middle of the Stripe call -> a second worker resumes the re-delivered run, one
PaymentIntent; a run paused for confirmation goes on on a worker once confirmed; bad
parameters, an unbound MUST or a SQLite journal enqueue nothing and journal nothing.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.redis import queue_length
from tests.support.standing_proof import new_customer
from tests.support.workers import ROOT, Worker, submit, worker_env

CHARGE = "/v1/payment_intents"


def _env(pg_journal: str, broker: str, sandbox: Sandbox, tmp_path: Path) -> dict[str, str]:
    return worker_env(pg_journal, broker, {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "outbox")})


def _follow(
    env: dict[str, str], run_id: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return sop_cli("inspect", run_id, "--follow", "--interval", "0.2", cwd=ROOT, env=env,
                   timeout=timeout)  # fmt: skip


def _inspect(env: dict[str, str], run_id: str) -> dict[str, Any]:
    proc = sop_cli("inspect", run_id, "--json", cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    found: dict[str, Any] = json.loads(proc.stdout)
    return found


def _intents(sandbox: Sandbox, customer: str) -> list[str]:
    api = sandbox.client().v1.payment_intents
    return [pi.id for pi in api.list({"limit": 100}).auto_paging_iter() if pi.customer == customer]


def _verify(env: dict[str, str]) -> None:
    proc = sop_cli("journal", "verify", cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "intact" in proc.stdout


def test_a_submitted_run_is_executed_by_a_worker(
    sandbox: Sandbox, pg_journal: str, broker: str, tmp_path: Path
) -> None:
    env = _env(pg_journal, broker, sandbox, tmp_path)
    customer = new_customer(sandbox)
    key = f"submit-once-{customer}"
    charge = (
        "operation=charge",
        f"customer_id={customer}",
        "amount=2500",
        f"idempotency_key={key}",
    )
    run_id = submit(env, *charge)
    assert queue_length(broker) == 1  # enqueued; no worker yet
    listed = sop_cli("runs", "--json", cwd=ROOT, env=env)
    assert [(r["run_id"], r["status"]) for r in json.loads(listed.stdout)] == [(run_id, "queued")]

    with Worker(env, "--concurrency", "2") as worker:
        followed = _follow(env, run_id)  # another process, reading the shared journal
        assert followed.returncode == 0, followed.stdout + followed.stderr
        assert "run finished" in followed.stdout
        assert "queued for a worker (queue 'sop')" in followed.stdout
        log = worker.wait_for(f"run {run_id}: succeeded")
        assert f"run {run_id}: taken (payment-processing, was queued)" in log
        runs = sop_cli("runs", cwd=ROOT, env=env)
        assert runs.returncode == 0, runs.stderr
        assert "queue 'sop': 0 waiting" in runs.stdout
        assert "workers: 1 live" in runs.stdout

    inspected = _inspect(env, run_id)
    assert inspected["run"]["status"] == "succeeded"
    assert inspected["result"]["output"]["status"] == "succeeded"
    argv = [arg for param in charge for arg in ("-p", param)]
    again = sop_cli("run", "payment-processing", "--submit", "--json", *argv, cwd=ROOT, env=env)
    assert again.returncode == 0, again.stderr  # the same key and parameters: that run
    assert json.loads(again.stdout) == {"run_id": run_id, "status": "succeeded", "queue": "sop"}
    assert queue_length(broker) == 0
    types = [event["type"] for event in inspected["events"]]
    assert types[:4] == ["run_started", "plan", "run_submitted", "run_resumed"]
    assert len(_intents(sandbox, customer)) == 1
    _verify(env)


def test_a_worker_killed_mid_run_is_replaced_without_a_second_charge(
    sandbox: Sandbox, pg_journal: str, broker: str, tmp_path: Path
) -> None:
    env = _env(pg_journal, broker, sandbox, tmp_path)
    customer = new_customer(sandbox)
    # the PaymentIntent request is held 2 s by the sandbox: the worker dies inside it
    sandbox.inject("delay", match=CHARGE, method="POST", seconds=2.0)
    run_id = submit(env, "operation=charge", f"customer_id={customer}", "amount=4200")
    first = Worker(env, name="first")
    try:
        first.wait_for(f"run {run_id}: taken")
        deadline_requests = [r for r in _wait_for_held(sandbox, first) if r["path"] == CHARGE]
        assert deadline_requests
        first.kill()  # SIGKILL while Stripe is still working on the request
    finally:
        first.stop()
    assert f"run {run_id}: succeeded" not in first.log()
    with Worker(env, name="second") as second:
        log = second.wait_for(f"run {run_id}: succeeded", timeout=90)
        assert f"run {run_id}: taken (payment-processing, was interrupted)" in log

    inspected = _inspect(env, run_id)
    assert inspected["run"]["status"] == "succeeded"
    resumed = [e for e in inspected["events"] if e["type"] == "run_resumed"]
    assert "took_over" in resumed[-1]["data"]  # the dead worker's lease, taken over
    assert len(_intents(sandbox, customer)) == 1  # exactly once
    posts = [r for r in sandbox.requests() if r["path"] == CHARGE and r["method"] == "POST"]
    assert len({r["idempotency_key"] for r in posts}) == 1  # one key, however often sent
    _verify(env)


def _wait_for_held(sandbox: Sandbox, worker: Worker) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 60
    while True:
        held = [r for r in sandbox.requests() if r.get("fault") == "delay" and r["status"] is None]
        if held:
            return held
        assert worker.proc.poll() is None, worker.log()
        assert time.monotonic() < deadline, "the held request never started"
        time.sleep(0.02)


def test_a_paused_submitted_run_goes_on_on_a_worker_once_confirmed(
    sandbox: Sandbox, pg_journal: str, broker: str, tmp_path: Path
) -> None:
    env = _env(pg_journal, broker, sandbox, tmp_path)
    customer = new_customer(sandbox)
    with Worker(env) as worker:
        charge = submit(env, "operation=charge", f"customer_id={customer}", "amount=20000")
        worker.wait_for(f"run {charge}: succeeded")
        pi = _inspect(env, charge)["result"]["output"]["transaction_id"]
        refund = submit(env, "operation=refund", f"customer_id={customer}",
                         f"payment_intent={pi}", "amount=15000")  # fmt: skip
        log = worker.wait_for(f"run {refund}: paused")
        token = re.search(rf"sop resume {refund} --confirm (\S+)", log)
        assert token is not None, log
        assert _follow(env, refund).returncode == 3  # paused: a person's turn

        confirmed = sop_cli("resume", refund, "--confirm", token[1], "--as", "alice",
                            cwd=ROOT, env=env)  # fmt: skip
        assert confirmed.returncode == 0, confirmed.stderr
        assert "queued: a worker continues it" in confirmed.stdout
        followed = _follow(env, refund)
        assert followed.returncode == 0, followed.stdout + followed.stderr
        log = worker.wait_for(f"run {refund}: succeeded")
    assert log.count(f"run {refund}: taken") == 2  # the run, then its continuation
    events = _inspect(env, refund)["events"]
    used = [e for e in events if e["type"] == "confirmation_used"]
    assert [e["data"]["by"] for e in used] == ["alice"]
    assert [e["data"].get("confirmed") for e in events if e["type"] == "run_resumed"] == [
        False,
        True,
    ]
    refunds = [
        r for r in sandbox.requests() if r["path"] == "/v1/refunds" and r["method"] == "POST"
    ]
    assert len(refunds) == 1
    _verify(env)


def test_bad_parameters_enqueue_nothing_and_journal_nothing(
    pg_journal: str, broker: str, tmp_path: Path
) -> None:
    env = worker_env(pg_journal, broker)
    argv = ["run", "payment-processing", "-p", "operation=charge", "-p", "customer_id=nope",
            "-p", "amount=-5"]  # fmt: skip
    local = sop_cli(*argv, cwd=ROOT, env=env)
    submitted = sop_cli(*argv, "--submit", cwd=ROOT, env=env)
    assert submitted.returncode == local.returncode == 2
    assert submitted.stderr == local.stderr  # the same one line
    assert len(submitted.stderr.strip().splitlines()) == 1
    assert "customer_id" in submitted.stderr and "amount" in submitted.stderr
    assert queue_length(broker) == 0
    runs = sop_cli("runs", "--json", cwd=ROOT, env=env)
    assert json.loads(runs.stdout) == []


def test_an_unbound_must_is_refused_as_by_run(pg_journal: str, broker: str, tmp_path: Path) -> None:
    sop = tmp_path / "sops" / "unbound-demo.sop.md"
    sop.parent.mkdir()
    sop.write_text(
        "# Unbound Demo SOP\n\n**Version**: 0.1.0\n\n## Overview\n\nDemo.\n\n## Steps\n\n"
        "### 1. Do\n\n**Actions**:\n- MUST frobnicate the widget\n",
        encoding="utf-8",
    )
    env = worker_env(pg_journal, broker)
    local = sop_cli("run", "unbound-demo", cwd=tmp_path, env=env)
    submitted = sop_cli("run", "unbound-demo", "--submit", cwd=tmp_path, env=env)
    assert submitted.returncode == local.returncode == 1
    assert submitted.stderr == local.stderr
    assert "frobnicate the widget" in submitted.stderr
    assert queue_length(broker) == 0
    assert json.loads(sop_cli("runs", "--json", cwd=tmp_path, env=env).stdout) == []


def test_a_sqlite_journal_is_refused_in_one_line(broker: str, tmp_path: Path) -> None:
    env = worker_env(str(tmp_path / "journal.db"), broker, {"STRIPE_API_KEY": "sk_test_x"})
    proc = sop_cli("run", "payment-processing", "--submit", "-p", "operation=charge",
                   "-p", "customer_id=cus_A1", "-p", "amount=100", cwd=ROOT, env=env)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("sop: error: --submit needs a journal the workers share")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert queue_length(broker) == 0
    assert not (tmp_path / "journal.db").exists()
    worker = subprocess.run([sys.executable, "-m", "engine", "worker"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert worker.returncode == 2
    assert worker.stderr.startswith("sop: error: sop worker needs a journal the workers share")


def test_runs_shows_no_health_line_without_a_broker_and_says_when_it_is_down(
    pg_journal: str, tmp_path: Path
) -> None:
    env = worker_env(pg_journal, "redis://127.0.0.1:1/0")
    down = sop_cli("runs", cwd=ROOT, env=env)
    assert down.returncode == 0, down.stderr
    assert "queue 'sop': broker redis://127.0.0.1:1/0 unreachable" in down.stdout
    assert "workers: 0 live" in down.stdout
    del env["SOP_BROKER"]
    quiet = sop_cli("runs", cwd=ROOT, env=env, drop=("SOP_BROKER",))
    assert "queue" not in quiet.stdout and "workers" not in quiet.stdout


def test_a_broker_down_at_submit_is_one_line_and_the_run_resumes_here(
    sandbox: Sandbox, pg_journal: str, tmp_path: Path
) -> None:
    env = _env(pg_journal, "redis://127.0.0.1:1/0", sandbox, tmp_path)
    customer = new_customer(sandbox)
    argv = ["run", "payment-processing", "-p", "operation=charge", "-p", f"customer_id={customer}",
            "-p", "amount=700", "-p", f"idempotency_key={uuid.uuid4()}"]  # fmt: skip
    proc = sop_cli(*argv, "--submit", cwd=ROOT, env=env)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    found = re.search(r"unreachable .*run (\w+) is journaled \(queued\) but not enqueued; run it"
                      r" here with: sop resume (\w+)", proc.stderr)  # fmt: skip
    assert found is not None and found[1] == found[2], proc.stderr
    assert _intents(sandbox, customer) == []  # nothing ran
    again = sop_cli(*argv, cwd=ROOT, env=env)  # the same key, run here: not a second charge
    assert again.returncode != 0 and "Traceback" not in again.stderr
    assert f"run {found[1]} with the same idempotency_key is queued for a worker" in again.stderr
    assert _intents(sandbox, customer) == []
    resumed = sop_cli("resume", found[1], "-q", cwd=ROOT, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert len(_intents(sandbox, customer)) == 1
    _verify(env)
