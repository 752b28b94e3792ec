"""Proof (issue 13): N charge runs on the sandbox through 3 ``sop worker`` processes on
PostgreSQL; one worker SIGKILLed mid-way and another started. Prints how many runs
finished, duplicate PaymentIntents (counted in the sandbox), lost events and
``sop journal verify``.

Lost events: a finished run whose journal lacks its start, its submission, an action's
finish or its ``run_finished``, plus any break ``verify`` finds in the chain.

Run: .venv/bin/python bench/proof_workers.py [N]   (default 300; the README's figures)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from engine.distributed.submit import submit
from engine.storage.journal import Journal
from handlers.sandbox import Sandbox
from tests.support.postgres import Postgres
from tests.support.redis import Redis
from tests.support.standing_proof import new_customer
from tests.support.workers import ROOT, Worker, worker_env

WORKERS = 3
CONCURRENCY = 2


def _wait_finished(journal: Journal, ids: set[str], count: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        done = [r.run_id for r in journal.runs() if r.run_id in ids and r.status == "succeeded"]
        if len(done) >= count or time.monotonic() > deadline:
            return done
        time.sleep(0.2)


def _wait_in_flight(worker: Worker, timeout: float = 120) -> None:
    """Until ``worker`` has taken a run it has not finished (its log says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = worker.log()
        if log.count(": taken (") > len(re.findall(r"run \w+: \w+ in [\d.]+s", log)):
            return
        time.sleep(0.01)


def _lost_events(journal: Journal, run_id: str) -> int:
    types = Counter(e.type for e in journal.events(run_id))
    missing = sum(1 for t in ("run_started", "run_submitted", "run_finished") if not types[t])
    started = sum(1 for e in journal.events(run_id) if e.type == "action_started")
    finished = types["action_finished"] + types["action_pending"]
    return missing + max(0, started - finished - types["run_resumed"])


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    began = time.perf_counter()
    outbox = Path(tempfile.mkdtemp(prefix="sop-proof-outbox-"))
    with Postgres() as cluster, Redis() as redis, Sandbox() as sandbox:
        url = cluster.database()
        with Journal(url) as journal:
            journal.head()
        extra = {**sandbox.env(), "SOP_OUTBOX": str(outbox)}
        env = worker_env(url, redis.url, extra)
        os.environ.update(extra, SOP_BROKER=redis.url, SOP_JOURNAL=url)
        customers = [new_customer(sandbox, f"proof{i}@example.invalid") for i in range(10)]
        fleet = [
            Worker(env, "--concurrency", str(CONCURRENCY), name=f"w{i}") for i in range(WORKERS)
        ]
        with Journal(url) as journal:
            ids = {
                submit(
                    "payment-processing",
                    {"operation": "charge", "customer_id": customers[i % 10], "amount": 100 + i},
                    journal=journal,
                )
                for i in range(n)
            }
            print(f"submitted {n} charge runs in {time.perf_counter() - began:.1f} s")
            _wait_finished(journal, ids, n // 3, 600)
            victim = fleet[0]
            _wait_in_flight(victim)
            victim.kill()  # SIGKILL mid-way: its runs in flight are re-delivered
            print(f"SIGKILLed w0 (pid {victim.proc.pid}) with a run in flight, {n // 3}+ finished")
            fleet.append(Worker(env, "--concurrency", str(CONCURRENCY), name="w3"))
            done = _wait_finished(journal, ids, n, 1800)
            statuses = Counter(r.status for r in journal.runs() if r.run_id in ids)
            lost = sum(_lost_events(journal, rid) for rid in ids)
            retaken = sum(  # a run the killed worker had begun, resumed by another
                1
                for rid in ids
                if sum(1 for e in journal.events(rid) if e.type == "run_resumed") > 1
            )
            problems = journal.verify()
        for worker in fleet:
            worker.stop()
        intents = [
            pi
            for pi in sandbox.client().v1.payment_intents.list({"limit": 100}).auto_paging_iter()
            if pi.customer in customers
        ]
        by_key = Counter(
            r["idempotency_key"]
            for r in sandbox.requests()
            if r["path"] == "/v1/payment_intents" and r["method"] == "POST" and r["status"] == 200
        )
        verify = subprocess.run(
            [sys.executable, "-m", "engine", "journal", "verify"],
            cwd=ROOT,
            env={**os.environ, "SOP_JOURNAL": url},
            capture_output=True,
            text=True,
            timeout=300,
        )
    killed_log = fleet[0].log()
    in_flight = killed_log.count(": taken (") - len(
        re.findall(r"run \w+: \w+ in [\d.]+s", killed_log)
    )
    print(f"finished: {len(done)} of {n} succeeded ({dict(statuses)})")
    print(f"runs in flight on the killed worker: {in_flight}; resumed by another: {retaken}")
    print(f"PaymentIntents: {len(intents)} for {len(done)} runs;"
          f" duplicates: {len(intents) - len(done)}")  # fmt: skip
    resent = sum(1 for c in by_key.values() if c > 1)
    print(f"idempotency keys sent again by a resumed run (one PaymentIntent each): {resent}")
    print(f"lost events: {lost}; verify problems: {len(problems)}")
    print(f"sop journal verify: {verify.stdout.strip() or verify.stderr.strip()}")
    print(f"took {time.perf_counter() - began:.0f} s")
    ok = len(done) == n and len(intents) == n and lost == 0 and not problems
    return 0 if ok and verify.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
