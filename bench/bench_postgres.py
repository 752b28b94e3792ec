"""PostgreSQL journal benchmark: engine overhead per action against a bare PostgreSQL commit.

The seed SOP with every line bound to a no-op handler (as bench_run.py), journaled in a
throwaway PostgreSQL cluster (tests/support/postgres.py: Debian's server, default
durability, fsync on) through ``SOP_JOURNAL``'s backend, ``PostgresJournal``. The floor
is the cheapest durable append PostgreSQL has: one autocommitted single-row INSERT over
the same kind of connection (TCP on 127.0.0.1), measured in the same rounds. Target:
engine overhead per executed action at most 4x that commit, as for SQLite.

Run: .venv/bin/python bench/bench_postgres.py [runs]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support.postgres

import psycopg
from report import summary_line  # bench/ is first on sys.path when run as a script
from seed_noop import PARAMS, registry_for_every_line

from engine.binding.planner import plan
from engine.execution.runner import ActionStatus, run
from engine.language.catalog import load
from engine.storage.journal import Journal
from tests.support.postgres import Postgres

TARGET_RATIO = 4.0


class BareCommits:
    """One row, one autocommitted INSERT, no engine at all."""

    def __init__(self, url: str) -> None:
        self.db = psycopg.connect(url, autocommit=True)
        self.db.execute("CREATE TABLE floor (seq BIGSERIAL PRIMARY KEY, run_id TEXT, data TEXT)")
        self.row = ("r" * 32, '{"attempt":1,"idempotency_key":"18d07684-7671-5030-b327-03fa5454"}')

    def seconds_each(self, count: int) -> float:
        db, row = self.db, self.row
        started = time.perf_counter()
        for _ in range(count):
            db.execute("INSERT INTO floor(run_id, data) VALUES (%s, %s)", row)
        return (time.perf_counter() - started) / count


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    os.environ.setdefault("STRIPE_API_KEY", "sk_test_bench")
    sop = load("payment-processing")
    registry = registry_for_every_line()
    rounds, per_round = max(runs // 10, 5), 10
    engine_us: list[float] = []
    commit_us: list[float] = []
    with Postgres(fsync=True) as cluster:
        journal = Journal(cluster.database())
        floor_db = BareCommits(cluster.database())
        executed = 0
        for _ in range(3):  # warm-up
            run(sop, PARAMS, registry=registry, journal=journal)
        direct = plan(sop, PARAMS, registry=registry)
        assert direct.ok
        for _ in range(rounds):
            times = []
            for _ in range(per_round):
                started = time.perf_counter()
                result = run(sop, PARAMS, registry=registry, journal=journal)
                times.append(time.perf_counter() - started)
                assert result.ok, result.errors
                executed = sum(1 for a in result.actions if a.status is ActionStatus.PASSED)
            engine_us.append(statistics.mean(times) * 1e6)
            commit_us.append(floor_db.seconds_each(per_round * executed) * 1e6)
        problems = journal.verify()
        journal.close()
        floor_db.db.close()
    n = executed
    per_action = statistics.median(engine_us) / n
    commit = statistics.median(commit_us)
    ratio = per_action / commit
    print(f"seed SOP on PostgreSQL: {n} actions executed per run, {rounds} rounds of {per_round}")
    print(f"chain intact: {not problems}")
    print(f"engine per action (all of run)  {per_action:10.1f} us")
    print(f"bare PostgreSQL commit          {commit:10.1f} us (one INSERT, autocommit)")
    print(f"ratio engine/bare commit: {ratio:.1f}x (target <= {TARGET_RATIO:g}x)")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        summary_line(
            "postgres_overhead",
            ratio,
            f"<={TARGET_RATIO:g}",
            what="engine per action on the PostgreSQL journal vs one bare PostgreSQL commit",
            measured=f"{per_action:.0f} us/action",
            peer=f"bare PostgreSQL commit {commit:.1f} us",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
