"""Workers benchmark: throughput of I/O-bound runs on 1 worker against 3, in one run.

Each run of a small SOP has four MUST lines whose handlers wait on I/O (a fixed sleep,
``SOP_BENCH_IO_SECONDS``, default 0.25 s: a payment API's answer). N runs (default 24) are
submitted with ``engine.submit`` to ``sop worker`` processes (real subprocesses, one
thread each) over a throwaway redis-server, the journal on a throwaway PostgreSQL
cluster; the clock runs from the first submit until the journal says the last run
finished. First with 1 worker, then with 3 (new databases each time). Target: 3 workers
at least 2.5x the throughput of 1.

Run: .venv/bin/python bench/bench_workers.py [runs]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support

from report import summary_line  # bench/ is first on sys.path when run as a script

from engine.distributed.health import workers
from engine.distributed.submit import submit
from engine.storage.journal import Journal
from tests.support.postgres import Postgres
from tests.support.redis import Redis
from tests.support.workers import Worker, worker_env

TARGET = 2.5
SOP = """\
# Io Bench SOP

**Version**: 0.1.0

## Overview

Four calls to a slow service.

## Parameters

- **n** (integer): Which run

## Steps

### 1. Call

**Actions**:
- MUST call the first service
- MUST call the second service
- MUST call the third service
- MUST call the fourth service
"""
HANDLERS = """\
import os
import time

import engine

WAIT = float(os.environ.get("SOP_BENCH_IO_SECONDS", "0.25"))


def _wait(ctx):
    time.sleep(WAIT)


for nth in ("first", "second", "third", "fourth"):
    engine.action(f"call the {nth} service")(_wait)
"""


def _project() -> Path:
    where = Path(tempfile.mkdtemp(prefix="sop-bench-workers-"))
    (where / "io-bench.sop.md").write_text(SOP, encoding="utf-8")
    (where / "bench_io_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return where


def _round(cluster: Postgres, redis: Redis, project: Path, count: int, runs: int) -> float:
    """Seconds from the first submit until all ``runs`` finished, on ``count`` workers."""
    url = cluster.database()
    with Journal(url) as journal:
        journal.head()  # migrated before the workers beat into it
    extra = {"SOP_PATH": str(project), "PYTHONPATH": str(project)}
    env = worker_env(url, redis.url, extra)
    os.environ.update(extra, SOP_BROKER=redis.url)
    fleet = [Worker(env, "--handlers", "bench_io_handlers", name=f"w{i}") for i in range(count)]
    try:
        deadline = time.monotonic() + 120
        while sum(1 for w in workers(url) if w.stopped is None) < count:
            assert time.monotonic() < deadline, [w.log() for w in fleet]
            time.sleep(0.1)
        with Journal(url) as journal:
            started = time.perf_counter()
            ids = {
                submit("io-bench", {"n": i}, journal=journal, handlers=["bench_io_handlers"])
                for i in range(runs)
            }
            while True:
                done = [r for r in journal.runs() if r.run_id in ids and r.status == "succeeded"]
                if len(done) == runs:
                    return time.perf_counter() - started
                assert time.monotonic() < deadline + 600, "runs did not finish"
                time.sleep(0.05)
    finally:
        for worker in fleet:
            worker.stop()


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 24
    project = _project()
    sys.path.insert(0, str(project))
    os.environ["SOP_PATH"] = str(project)
    import bench_io_handlers  # noqa: F401  (registers the handlers submit plans with)

    with Postgres() as cluster, Redis() as redis:
        one = _round(cluster, redis, project, 1, runs)
        three = _round(cluster, redis, project, 3, runs)
    ratio = one / three
    print(f"{runs} runs, 4 x {os.environ.get('SOP_BENCH_IO_SECONDS', '0.25')} s of I/O each")
    print(f"1 worker: {one:.2f} s ({runs / one:.2f} runs/s)")
    print(f"3 workers: {three:.2f} s ({runs / three:.2f} runs/s)")
    print(
        summary_line(
            "workers_scaling",
            ratio,
            f">={TARGET:g}",
            what="throughput of I/O-bound runs, 3 workers vs 1 (bench_workers.py)",
            measured=f"3 workers {runs / three:.2f} runs/s",
            peer=f"1 worker {runs / one:.2f} runs/s",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
