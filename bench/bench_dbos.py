"""Per durable step: this engine against DBOS Transact, alternating in one run.

Engine: the seed SOP (sops/payment-processing.sop.md, operation=charge) with every line
bound to a no-op handler, 33 actions per run, through ``engine.run`` on an open SQLite
journal. DBOS Transact 3.x: a workflow of the same number of no-op ``@DBOS.step``s on
its SQLite system database, in a subprocess of the bench virtualenv
(``bench/peers/dbos_peer.py``; ``make bench`` installs dbos in ``.venv-bench``, never
in the project).

Same durability, compared: WAL with ``synchronous=NORMAL`` on both sides (the engine's
default; DBOS's pragmas set on every connection). Also shown: DBOS's own SQLite defaults
(rollback journal, ``synchronous=FULL``) against the engine with ``SOP_JOURNAL_SYNC=FULL``,
both surviving power loss. Per step = a whole run's wall time / its steps; rounds
alternate engine and DBOS: each round's mean, the median over rounds; the ratio is
the median of the rounds' ratios.
Target: the engine at least 50x cheaper per step at the same durability.

Run: .venv/bin/python bench/bench_dbos.py [rounds] (SOP_BENCH_PYTHON: the python with dbos)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from floors import ContractFloor
from report import skip_line, summary_line
from seed_noop import PARAMS, registry_for_every_line

import engine
from engine.storage.journal import Journal

ROOT = Path(__file__).resolve().parents[1]
PEER = ROOT / "bench" / "peers" / "dbos_peer.py"
TARGET = ">=50"
ENGINE_RUNS, DBOS_RUNS = 20, 4  # per round: about the same wall time on each side


def open_journal(path: Path, sync: str) -> Journal:
    """A journal with the given ``SOP_JOURNAL_SYNC`` (read when the journal opens)."""
    before = os.environ.get("SOP_JOURNAL_SYNC")
    os.environ["SOP_JOURNAL_SYNC"] = sync
    try:
        return Journal(path)
    finally:
        if before is None:
            os.environ.pop("SOP_JOURNAL_SYNC", None)
        else:
            os.environ["SOP_JOURNAL_SYNC"] = before


class EngineSide:
    """Runs of the seed SOP on one journal; seconds per executed action."""

    def __init__(self, journal: Journal, registry: engine.Registry) -> None:
        self.journal, self.registry = journal, registry
        self.sop = engine.load("payment-processing")
        self.steps = 0

    def round(self, runs: int) -> float:
        """Mean seconds per action over ``runs`` runs."""
        times: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            result = engine.run(self.sop, PARAMS, registry=self.registry, journal=self.journal)
            times.append(time.perf_counter() - started)
            assert result.ok, result.errors
            self.steps = sum(1 for a in result.actions if a.status.value == "passed")
        return statistics.mean(times) / self.steps


class DbosSide:
    """One DBOS process (launched once), driven over stdin; seconds per step."""

    def __init__(self, python: str, db: Path, sqlite: str, steps: int) -> None:
        self.steps = steps
        cmd = [python, str(PEER), "--db", str(db), "--sqlite", sqlite, "--steps", str(steps)]
        self.stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True
        )
        self.info = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.stderr.seek(0)
            tail = self.stderr.read().decode("utf-8", "replace").strip().splitlines()[-5:]
            raise RuntimeError("DBOS peer stopped: " + " | ".join(tail))
        answer: dict[str, Any] = json.loads(line)
        return answer

    def round(self, runs: int) -> float:
        """Mean seconds per step over ``runs`` workflows."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{runs}\n")
        self.proc.stdin.flush()
        answer = self._answer()
        self.info.update({k: v for k, v in answer.items() if k != "seconds"})
        return float(statistics.mean(answer["seconds"])) / self.steps

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # the peer ends on EOF
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()


@contextmanager
def dbos_side(python: str, db: Path, sqlite: str, steps: int) -> Iterator[DbosSide]:
    side = DbosSide(python, db, sqlite, steps)
    try:
        yield side
    finally:
        side.close()


def peer_python() -> str | None:
    python = os.environ.get("SOP_BENCH_PYTHON") or str(ROOT / ".venv-bench" / "bin" / "python")
    return python if os.access(python, os.X_OK) else None


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 6
    python = peer_python()
    if python is None:
        print(skip_line("dbos_step", "no .venv-bench/bin/python with dbos (make bench makes it)"))
        return 0
    os.environ.setdefault("STRIPE_API_KEY", "sk_test_bench")  # a prerequisite of the seed SOP
    os.environ.setdefault("SOP_KEY_FILE", os.path.join(tempfile.mkdtemp(), "journal.key"))
    registry = registry_for_every_line()
    with tempfile.TemporaryDirectory() as tmp:
        normal = EngineSide(open_journal(Path(tmp) / "normal.db", "NORMAL"), registry)
        full = EngineSide(open_journal(Path(tmp) / "full.db", "FULL"), registry)
        normal.round(5)  # warm-up, and the number of steps per run
        full.round(5)
        steps = normal.steps
        contract = ContractFloor(Path(tmp))
        with (
            dbos_side(python, Path(tmp) / "dbos-wal.db", "wal-normal", steps) as dbos_normal,
            dbos_side(python, Path(tmp) / "dbos-defaults.db", "defaults", steps) as dbos_defaults,
        ):
            assert dbos_normal.info["journal_mode"] == "wal", dbos_normal.info
            assert dbos_normal.info["synchronous"] == "NORMAL", dbos_normal.info
            dbos_normal.round(1)  # warm-up
            dbos_defaults.round(1)
            samples: dict[str, list[float]] = {
                "normal": [],
                "full": [],
                "dn": [],
                "dd": [],
                "contract": [],
            }
            for _ in range(rounds):
                samples["normal"].append(normal.round(ENGINE_RUNS))
                samples["dn"].append(dbos_normal.round(DBOS_RUNS))
                samples["full"].append(full.round(ENGINE_RUNS))
                samples["dd"].append(dbos_defaults.round(DBOS_RUNS))
                samples["contract"].append(contract.seconds_each(steps * ENGINE_RUNS))
            version = dbos_normal.info["dbos"]
            defaults = f"{dbos_defaults.info['journal_mode']}, {dbos_defaults.info['synchronous']}"
        normal.journal.close()
        full.journal.close()
        contract.db.close()

    med = {k: statistics.median(v) for k, v in samples.items()}
    print(f"{steps} no-op steps per run; {rounds} rounds alternating engine and DBOS {version}")
    rows = [
        ("engine, WAL + synchronous=NORMAL (default)", "normal"),
        ("DBOS, WAL + synchronous=NORMAL", "dn"),
        ("engine, WAL + synchronous=FULL", "full"),
        (f"DBOS, its SQLite defaults ({defaults})", "dd"),
        ("journal contract alone, plain Python (NORMAL)", "contract"),
    ]
    for label, key in rows:
        per_round = [round(s * 1e6) for s in samples[key]]
        print(f"{label:<48}{_us(med[key]):>10} per step   rounds (us): {per_round}")
    # each round's ratio pairs measurements taken seconds apart: the median of those
    same = statistics.median(d / e for d, e in zip(samples["dn"], samples["normal"], strict=True))
    strict = statistics.median(d / e for d, e in zip(samples["dd"], samples["full"], strict=True))
    print(f"DBOS / engine per step, WAL NORMAL both: {same:.1f}x (target {TARGET})")
    print(f"DBOS defaults / engine FULL (both survive power loss): {strict:.1f}x")
    ceiling = statistics.median(
        d / c for d, c in zip(samples["dn"], samples["contract"], strict=True)
    )
    print(
        f"DBOS / the journal contract alone: {ceiling:.1f}x (the most a Python engine keeping"
        f" this journal could reach; the target asks {TARGET})"
    )
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        summary_line(
            "dbos_step",
            same,
            TARGET,
            what="per step vs DBOS Transact (both WAL, NORMAL)",
            measured=f"{_us(med['normal'])}/step",
            peer=f"DBOS {version} {_us(med['dn'])}/step",
        )
    )
    print(
        summary_line(
            "dbos_step_full",
            strict,
            "-",
            what="per step, power-loss safe: DBOS defaults vs engine SOP_JOURNAL_SYNC=FULL",
            measured=f"{_us(med['full'])}/step",
            peer=f"DBOS {version} {_us(med['dd'])}/step",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
