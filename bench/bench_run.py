"""Runner benchmark: engine overhead per action on the seed SOP.

Every line of sops/payment-processing.sop.md is bound to a no-op handler; one run
(operation=charge) executes them with the real SQLite journal (WAL, hash chain,
redaction, worker thread for timeouts, retry wrapper). The floor is calling the
same handlers directly in the same order. Target: engine overhead per executed
action at most 4x one bare SQLite WAL commit (the durability floor: one commit per
action), both measured in the same rounds so they see the same load.

Run: .venv/bin/python bench/bench_run.py [runs]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from floors import BareCommits, ContractFloor
from report import summary_line  # bench/ is first on sys.path when run as a script
from seed_noop import PARAMS, registry_for_every_line

from engine.binding.planner import plan
from engine.execution.runner import ActionStatus, run
from engine.language.catalog import load
from engine.storage.journal import Journal

TARGET_RATIO = 4.0


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    os.environ.setdefault("STRIPE_API_KEY", "sk_test_bench")
    sop = load("payment-processing")
    registry = registry_for_every_line()
    planned = plan(sop, PARAMS, registry=registry)
    assert planned.ok, [b.action.text for b in planned.unbound]
    bound = [b for b in planned.bindings if b.status == "bound"]

    # floor: the same handlers called directly, in order
    ctx = SimpleNamespace(state={}, output={})
    direct: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        for binding in bound:
            assert binding.match is not None
            binding.match.handler.func(ctx, **binding.match.captures)
        direct.append(time.perf_counter() - started)

    plan_times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        plan(sop, PARAMS, registry=registry)
        plan_times.append(time.perf_counter() - started)

    # Rounds alternate engine runs with the bare-commit floor, so both see the same load
    # on this shared VM; each round's mean, then the median over rounds, is reported.
    rounds, per_round = max(runs // 20, 5), 20
    engine_us: list[float] = []
    commit_us: list[float] = []
    contract_us: list[float] = []
    engine_cpu: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp) / "bench.db")
        floor_db = BareCommits(Path(tmp))
        contract = ContractFloor(Path(tmp))
        executed = 0
        for _ in range(5):  # warm-up
            run(sop, PARAMS, registry=registry, journal=journal)
        for _ in range(rounds):
            times, cpu = [], []
            for _ in range(per_round):
                started, started_cpu = time.perf_counter(), time.process_time()
                result = run(sop, PARAMS, registry=registry, journal=journal)
                times.append(time.perf_counter() - started)
                cpu.append(time.process_time() - started_cpu)
                assert result.ok, result.errors
                executed = sum(1 for a in result.actions if a.status is ActionStatus.PASSED)
            # the mean, not the median: checkpoints and other spikes are part of the cost
            engine_us.append(statistics.mean(times) * 1e6)
            engine_cpu.append(statistics.mean(cpu) * 1e6)
            commit_us.append(floor_db.seconds_each(per_round * executed) * 1e6)
            contract_us.append(contract.seconds_each(per_round * executed) * 1e6)
        events = sum(len(journal.events(r.run_id)) for r in journal.runs(limit=1))
        problems = journal.verify()
        journal.close()
        floor_db.db.close()
        contract.db.close()

    n = executed
    floor = statistics.median(direct) * 1e6
    total = statistics.median(engine_us)
    planning = statistics.median(plan_times) * 1e6
    commit = statistics.median(commit_us)
    contract_floor = statistics.median(contract_us)
    per_action = (total - floor) / n
    per_action_exec = (total - planning - floor) / n
    cpu_per_action = (statistics.median(engine_cpu) - floor) / n
    rows = [
        ("direct handler calls (floor)", floor, floor / n),
        ("plan (validate + bind)", planning, planning / n),
        ("engine run (plan+exec+journal)", total, total / n),
    ]
    print(f"seed SOP: {len(planned.bindings)} lines, {n} executed (operation=charge)")
    print(
        f"{rounds} rounds of {per_round} runs; journal: {events} events per run, "
        f"chain intact: {not problems}"
    )
    for label, per_run, each in rows:
        print(f"{label:<32}{per_run:10.1f} us/run {each:9.2f} us/action")
    lines = [
        ("engine overhead per action", per_action, "incl. planning"),
        ("  of which execution + journal", per_action_exec, "without planning"),
        ("bare SQLite WAL commit", commit, "one per action: the durability floor"),
        ("journal contract, plain Python", contract_floor, "key, JSON, hash chain, commit"),
        ("CPU per action, engine", cpu_per_action, "all threads; less load-sensitive"),
    ]
    for label, value, note in lines:
        print(f"{label:<32}{value:10.1f} us ({note})")
    print(f"ratio engine/direct: {total / floor:.0f}x")
    print(f"per round, overhead us/action: {[round((e - floor) / n) for e in engine_us]}")
    ratio = per_action / commit
    print(f"ratio overhead/bare commit: {ratio:.1f}x (target <= {TARGET_RATIO:g}x)")
    print(
        f"journal contract alone / bare commit: {contract_floor / commit:.1f}x; engine / journal"
        f" contract: {per_action / contract_floor:.1f}x; the target leaves"
        f" {TARGET_RATIO * commit - contract_floor:.0f} us/action for everything but the contract"
    )
    print(
        f"load average (1 min) while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    print(f"verdict: {'OK' if ratio <= TARGET_RATIO else 'OVER TARGET'}")
    print(
        summary_line(
            "run_overhead",
            ratio,
            f"<={TARGET_RATIO:g}",
            what="engine overhead per action vs one bare WAL commit",
            measured=f"{per_action:.0f} us/action (CPU {cpu_per_action:.0f} us)",
            peer=f"bare WAL commit {commit:.1f} us",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
