"""``sop ui`` with workers: the panel shows the queue and each worker's heartbeat, and
approving a submitted run's pending refund hands its continuation to a worker."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from engine.storage.journal import Journal
from engine.ui.app import Settings, create_app
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.standing_proof import new_customer
from tests.support.workers import ROOT, Worker, submit, worker_env

SECRET = "correct-horse-battery"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def _worker_row(client: TestClient, timeout: float = 30) -> str:
    """The panel's row of panel-worker, once its heartbeat shows no busy run (or at timeout):
    the row is written every heartbeat, so it may lag the worker's log by one beat."""
    deadline = time.monotonic() + timeout
    while True:
        home = client.get("/")
        assert home.status_code == 200
        assert "queue <code>sop</code>:" in home.text and "0 waiting" in home.text
        row = re.search(r"<td>panel-worker</td>.*?</tr>", home.text, re.DOTALL)
        assert row is not None, home.text
        if "0/3" in row[0] or time.monotonic() > deadline:
            return row[0]
        time.sleep(0.2)


def test_the_panel_and_an_approval_handed_to_a_worker(
    sandbox: Sandbox,
    pg_journal: str,
    broker: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = worker_env(pg_journal, broker, {**sandbox.env(), "SOP_OUTBOX": str(tmp_path / "o")})
    monkeypatch.setenv("SOP_BROKER", broker)
    client = TestClient(create_app(Settings(journal=pg_journal, secret=SECRET)))
    page = client.get("/login")
    client.post("/login", data={"name": "bob", "secret": SECRET, "csrf": _csrf(page.text)})
    customer = new_customer(sandbox)
    with Worker(env, "--concurrency", "3", name="panel-worker") as worker:
        charge = submit(env, "operation=charge", f"customer_id={customer}", "amount=20000")
        worker.wait_for(f"run {charge}: succeeded")
        with Journal(pg_journal) as journal:
            result = [e for e in journal.events(charge) if e.type == "run_finished"]
        pi = result[-1].data["result"]["output"]["transaction_id"]
        refund = submit(env, "operation=refund", f"customer_id={customer}",
                         f"payment_intent={pi}", "amount=15000")  # fmt: skip
        worker.wait_for(f"run {refund}: paused")

        row = _worker_row(client)  # the heartbeat after the pause says 0 busy
        assert "<td>live</td>" in row and "0/3" in row

        inbox = client.get("/inbox")
        assert refund in inbox.text
        approved = client.post(
            f"/runs/{refund}/approve", data={"csrf": _csrf(inbox.text)}, follow_redirects=False
        )
        assert approved.status_code == 303, approved.text
        log = worker.wait_for(f"run {refund}: succeeded")
    assert log.count(f"run {refund}: taken") == 2
    with Journal(pg_journal) as journal:
        used = [e.data for e in journal.events(refund) if e.type == "confirmation_used"]
        assert [u["by"] for u in used] == ["bob"]
        assert journal.verify() == []
    posts = [r for r in sandbox.requests() if r["path"] == "/v1/refunds" and r["method"] == "POST"]
    assert len(posts) == 1
    gone = sop_cli("runs", cwd=ROOT, env=env)
    assert re.search(r"panel-worker\s+stopped", gone.stdout), gone.stdout
