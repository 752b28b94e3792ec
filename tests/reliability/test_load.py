"""Concurrency and load: 8 processes on one journal; hundreds of runs in one process.

Promise: every run of every process succeeds with exactly one PaymentIntent, the hash
chain verifies, no event is lost; memory (RSS and Python allocations) stays flat over a
long series of runs.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from engine.binding.registry import Registry
from engine.execution.runner import run
from engine.storage.journal import Journal
from handlers.sandbox import Sandbox
from tests.support.standing_proof import (
    ROOT,
    figure,
    lost_events,
    new_customer,
    objects_by_run,
    scaled,
    sop_inproc,
)

PROCESSES = 8


def test_eight_processes_on_one_journal(sandbox: Sandbox, proof_env: Path) -> None:
    per_process = scaled(3, 15)
    db = proof_env / "shared.db"
    customers = [new_customer(sandbox, f"p{i}@example.invalid") for i in range(PROCESSES)]
    env = {**os.environ, **sandbox.env()}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "support" / "charge_worker.py"),
                str(db),
                c,
                str(per_process),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in customers
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    elapsed = time.perf_counter() - started
    results = [json.loads(line) for out, _ in outputs for line in out.splitlines()]
    intents = objects_by_run(sandbox, "payment_intents")
    lost = [x for r in results for x in lost_events(db, r["run_id"], r["actions"])]
    code, _, verify_err = sop_inproc("journal", "verify", "--journal", str(db))
    failed = [r for r in results if r["status"] != "succeeded"]
    figure(
        "concurrency: 8 processes, one journal",
        processes=PROCESSES,
        runs=len(results),
        succeeded=len(results) - len(failed),
        payment_intents=sum(len(intents.get(r["run_id"], [])) for r in results),
        journal_events_lost=len(lost),
        journal_verify="passes" if code == 0 else verify_err.strip()[:100],
        seconds=round(elapsed, 1),
    )
    assert [p.returncode for p in procs] == [0] * PROCESSES, [e[-500:] for _, e in outputs]
    assert len(results) == PROCESSES * per_process
    assert failed == [], failed[:2]
    assert all(len(intents.get(r["run_id"], [])) == 1 for r in results)
    assert lost == [] and code == 0


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_many_runs_in_one_process_keep_memory_flat(
    sandbox: Sandbox, journal: Journal, payments_registry: Registry, proof_env: Path
) -> None:
    runs = scaled(200, 2_000)
    customer = new_customer(sandbox, "load@example.invalid")
    params = {"operation": "charge", "customer_id": customer, "amount": 500}

    def charge() -> None:
        result = run("payment-processing", params, registry=payments_registry, journal=journal)
        assert result.status.value == "succeeded", result.errors

    for _ in range(20):  # warm: imports, caches, the first SOP parse
        charge()
    # pytest keeps every captured log record of a test: that is the harness growing, not us
    root = logging.getLogger()
    harness = [h for h in root.handlers if type(h).__module__.startswith("_pytest")]
    for handler in harness:
        root.removeHandler(handler)
    gc.collect()
    rss_before = _rss_kib()
    started = time.perf_counter()
    for _ in range(runs):
        charge()
    elapsed = time.perf_counter() - started
    gc.collect()
    rss_after = _rss_kib()
    traced = max(20, runs // 10)  # tracing slows runs about 5x: a window of them
    tracemalloc.start()
    for _ in range(5):
        charge()
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(traced):
        charge()
    gc.collect()
    after, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    for handler in harness:
        root.addHandler(handler)
    growth = (after - before) / traced
    figure(
        f"load: {runs} runs in one process",
        runs=runs,
        runs_per_second=round(runs / elapsed, 1),
        rss_before_MiB=round(rss_before / 1024, 1),
        rss_after_MiB=round(rss_after / 1024, 1),
        rss_growth_KiB_per_run=round((rss_after - rss_before) / runs, 2),
        traced_runs=traced,
        python_alloc_growth_bytes_per_run=round(growth),
        python_alloc_peak_MiB=round(peak / 2**20, 1),
    )
    assert rss_after - rss_before < 40 * 1024 + runs * 4  # KiB: 40 MiB + 4 KiB a run, at most
    assert growth < 4096  # bytes a run kept by Python objects
