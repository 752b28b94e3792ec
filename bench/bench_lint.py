"""Lint cost: (a) ``sop lint sops/`` fresh vs the import floor; (b) 1,000 SOPs in one call.

(a) The floor is ``python -c "import mistune, yaml, jsonschema"``: the libraries lint
    needs at all. Target: ratio <= 1.5.
(b) 1,000 seed-sized SOPs (names, prefixes, numbers varied) through one
    ``lint_paths`` call, serial and with its default worker processes, plus the share
    of that which is parse() alone. Target: under 3 s on the 2-core box.

Run: .venv/bin/python bench/bench_lint.py [--runs 10] [--count 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import summary_line  # bench/ is first on sys.path when run as a script

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "sops" / "payment-processing.sop.md"
# bytecode must be cached, as in any installed package; the warm-up run writes it
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _run(cmd: list[str]) -> tuple[float, float]:
    """Wall and CPU (user+sys) seconds of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=False, capture_output=True, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def bench_process(runs: int) -> float:
    """Floor and lint interleaved, so load from other work on the box hits both alike."""
    floor_cmd = [sys.executable, "-c", "import mistune, yaml, jsonschema"]
    lint_cmd = [sys.executable, "-m", "engine", "lint", "sops/"]
    warm = subprocess.run(lint_cmd, cwd=ROOT, capture_output=True, text=True, env=ENV)
    if warm.returncode not in (0, 1) or "error:" in warm.stderr:  # also warms caches and .pyc
        raise SystemExit(f"sop lint sops/ failed (exit {warm.returncode}): {warm.stderr.strip()}")
    floors, lints = [], []
    for _ in range(runs):
        floors.append(_run(floor_cmd))
        lints.append(_run(lint_cmd))
    floor_wall = statistics.median(w for w, _ in floors)
    lint_wall = statistics.median(w for w, _ in lints)
    floor_cpu = statistics.median(c for _, c in floors)
    lint_cpu = statistics.median(c for _, c in lints)
    print(
        f"(a) import floor    median wall {floor_wall * 1e3:6.1f} ms, cpu {floor_cpu * 1e3:6.1f} ms"
    )
    print(
        f"    sop lint sops/  median wall {lint_wall * 1e3:6.1f} ms, cpu {lint_cpu * 1e3:6.1f} ms"
    )
    ratio = lint_wall / floor_wall
    print(
        f"    ratio wall {ratio:.2f}x, cpu {lint_cpu / floor_cpu:.2f}x "
        f"over {runs} interleaved runs (target <= 1.50x)"
    )
    print(
        summary_line(
            "lint_cold",
            ratio,
            "<=1.5",
            what="sop lint cold start vs the import floor",
            measured=f"{lint_wall * 1e3:.0f} ms",
            peer=f"import mistune, yaml, jsonschema {floor_wall * 1e3:.0f} ms",
        )
    )
    return ratio


def variant(seed: str, i: int) -> str:
    """A seed-sized SOP whose names, symbols and numbers differ per ``i``."""
    return (
        seed.replace("Payment Processing SOP", f"Procedure {i} SOP")
        .replace("cus_", f"c{i}x_")
        .replace("99999999", str(99_999_999 - i))
        .replace("2500", str(2500 + i))
        .replace("Validate Input", f"Validate Input {i}")
        .replace("subscription-management.sop.md", f"proc-{(i + 1) % 1000:04d}.sop.md")
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_bulk(count: int, repeat: int) -> None:
    """Wall and CPU of ``lint_paths``; CPU (this process + its reaped workers) is what
    load from other work on the box distorts least, so both are printed, with the load."""
    from engine.language.lint import lint, lint_paths
    from engine.language.parser import parse

    seed = SEED.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as tmp:
        texts = [variant(seed, i) for i in range(count)]
        for i, text in enumerate(texts):
            (Path(tmp) / f"proc-{i:04d}.sop.md").write_text(text, encoding="utf-8")
        for label, jobs in (("serial (jobs=1)", 1), ("default (1 worker per CPU)", None)):
            walls, cpus = [], []
            for _ in range(repeat if jobs is None else 1):
                load = os.getloadavg()[0]
                start, cpu, kids = time.perf_counter(), time.process_time(), _children_cpu()
                found = lint_paths([tmp], jobs=jobs)
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - cpu + _children_cpu() - kids)
            files = {d.path for d in found}
            wall, cpu = min(walls), min(cpus)
            print(
                f"(b) lint_paths, {count} SOPs, {label:27s} {wall:6.2f} s wall "
                f"({wall / count * 1000:5.2f} ms/SOP), cpu {cpu:5.2f} s "
                f"({cpu / count * 1000:4.2f} ms/SOP); {len(found)} diagnostics in "
                f"{len(files)} files; target < 3 s"
            )
            if len(walls) > 1:
                shown = ", ".join(f"{w:.2f}" for w in walls)
                print(f"    {len(walls)} runs, wall s: {shown} (best shown; load avg {load:.2f})")
        cpu = time.process_time()
        sops = [parse(t + "\n", path=f"{tmp}/x{i}.sop.md") for i, t in enumerate(texts)]
        parse_only = time.process_time() - cpu  # distinct hashes: nothing cached
        cpu = time.process_time()
        for parsed in sops:
            lint(parsed)
        lint_only = time.process_time() - cpu
    print(
        f"    split (serial, cpu): parse() {parse_only:.2f} s "
        f"({parse_only / count * 1e3:.2f} ms/SOP), "
        f"lint() on parsed SOPs {lint_only:.2f} s ({lint_only / count * 1e3:.2f} ms/SOP); "
        f"load avg {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of the parallel lint")
    args = parser.parse_args()
    if args.runs > 0:
        bench_process(args.runs)
    if args.count > 0:
        bench_bulk(args.count, max(1, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
