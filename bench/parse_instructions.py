"""Parse cost vs mistune's own AST parse in CPU instructions (callgrind), not time.

Why: with many processes on 2 cores, timings of the same code move 1.1x -> 2.9x between
runs; instruction counts do not depend on the load. Each count runs one process under
``valgrind --tool=callgrind`` that collects only inside ``functools.reduce``, the call
that wraps the measured loop (imports and warm-up are not counted). Needs valgrind; not
part of ``make bench``.

Run: .venv/bin/python bench/parse_instructions.py [FILE ...] [--runs 2]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = [
    ROOT / "sops" / "payment-processing.sop.md",
    *sorted((ROOT / "tests" / "fixtures" / "agent-sop").glob("*.sop.md")),
]

CHILD = """
import sys
from functools import reduce
from pathlib import Path
import mistune
from engine.language.markdown import clear_caches
from engine.language.parser import parse
mode, runs, text = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).read_text("utf-8")
md = mistune.create_markdown(renderer="ast", plugins=["table"])
md(text); parse(text)
def ours():
    clear_caches()
    parse(text)
one = ours if mode == "parse" else (lambda: md(text))
reduce(lambda _a, _b: one(), range(runs), None)
"""


def instructions(mode: str, path: Path, runs: int) -> float:
    """Instructions of one parse (``mode`` parse) or one mistune AST parse (mistune)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--toggle-collect=functools_reduce",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                CHILD,
                mode,
                str(runs),
                str(path),
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        for line in out.read_text().splitlines():
            if line.startswith("totals:"):
                return int(line.split()[1]) / runs
    raise RuntimeError(f"no totals in callgrind output for {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("SKIP: valgrind is not installed (apt-get install valgrind)")
        return 0
    worst = 0.0
    for path in args.files or FILES:
        ours = instructions("parse", path, args.runs)
        floor = instructions("mistune", path, args.runs)
        worst = max(worst, ours / floor)
        print(
            f"{path.name:<28} mistune {floor / 1e6:7.2f}M  parse {ours / 1e6:7.2f}M  "
            f"ratio {ours / floor:5.3f}"
        )
    print(f"worst ratio {worst:.3f} (budget 1.0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
