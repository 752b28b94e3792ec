"""``make bench``: run every bench, then print one table of ratios against their peers.

Each bench is an ordinary script (``python bench/bench_NAME.py``) that prints whatever
detail it likes and, for every figure the README's Speed table shows, ONE summary line::

    RATIO name=dbos_step value=58.1 target=">=50" what="per step vs DBOS Transact" \
measured="engine 126 us/step" peer="DBOS 7.3 ms/step"

``value`` is the ratio (a plain number); ``target`` is ``<=X`` or ``>=X`` on that ratio
(``-`` for a figure shown without a target); ``what``, ``measured`` and ``peer`` are the
table's text. A bench that cannot measure (a peer is not installed) prints
``SKIP name=... reason="..."`` instead. Values with spaces are double-quoted (shlex
syntax). ``summary_line`` builds the line; the fields are stable, so a bench may also
print it with an f-string.

Ratios, not absolute times: this machine is shared and noisy, so every bench measures
its peer or floor in the same run (alternating, medians) and the ratio is what holds.
"""

from __future__ import annotations

import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
FIELDS = ("name", "value", "target", "what", "measured", "peer")


def summary_line(
    name: str, value: float, target: str, *, what: str, measured: str, peer: str
) -> str:
    """The one line ``report.py`` reads: ``RATIO name=... value=... target=...``."""
    parts = {
        "name": name,
        "value": f"{value:.3g}",
        "target": target,
        "what": what,
        "measured": measured,
        "peer": peer,
    }
    return "RATIO " + " ".join(f"{k}={shlex.quote(v)}" for k, v in parts.items())


def skip_line(name: str, reason: str) -> str:
    """A bench that could not measure says so, and the table shows why."""
    return f"SKIP name={shlex.quote(name)} reason={shlex.quote(reason)}"


@dataclass(frozen=True)
class Row:
    """One row of the table: a RATIO or SKIP line, or a bench that failed."""

    bench: str
    name: str
    value: float
    target: str
    what: str
    measured: str
    peer: str
    note: str = ""

    @property
    def met(self) -> str:
        if self.note or math.isnan(self.value):
            return "-"
        return {True: "yes", False: "NO", None: "-"}[meets(self.value, self.target)]


def meets(value: float, target: str) -> bool | None:
    """Whether ``value`` satisfies ``<=X`` / ``>=X``; None when there is no target."""
    target = target.strip()
    if target.startswith("<="):
        return value <= float(target[2:])
    if target.startswith(">="):
        return value >= float(target[2:])
    return None


def parse(bench: str, line: str) -> Row | None:
    """The row a summary line stands for; None for any other output line."""
    kind, _, rest = line.strip().partition(" ")
    if kind not in ("RATIO", "SKIP"):
        return None
    fields = dict(token.partition("=")[::2] for token in shlex.split(rest))
    name = fields.get("name", "?")
    if kind == "SKIP":
        reason = fields.get("reason", "")
        return Row(bench, name, math.nan, "", "", "", "", note=f"skipped: {reason}")
    try:
        value = float(fields["value"])
    except (KeyError, ValueError):
        return Row(bench, name, math.nan, "", "", "", "", note=f"bad summary line: {line!r}")
    return Row(
        bench,
        name,
        value,
        fields.get("target", "-"),
        fields.get("what", name),
        fields.get("measured", ""),
        fields.get("peer", ""),
    )


def run_bench(script: Path) -> tuple[list[Row], int]:
    """Run one bench with this interpreter, echoing its output; its summary rows."""
    print(f"\n=== {script.name}", flush=True)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=BENCH_DIR.parent,
    )
    assert proc.stdout is not None
    rows: list[Row] = []
    for line in proc.stdout:
        print(line, end="", flush=True)
        row = parse(script.stem, line)
        if row is not None:
            rows.append(row)
    code = proc.wait()
    print(f"=== {script.name}: exit {code}, {time.monotonic() - started:.0f} s", flush=True)
    if code != 0:
        rows.append(Row(script.stem, "-", math.nan, "", "", "", "", note=f"failed (exit {code})"))
    elif not rows:
        rows.append(Row(script.stem, "-", math.nan, "", "", "", "", note="no RATIO line"))
    return rows, code


def table(rows: list[Row]) -> str:
    """The summary as a markdown table (pastes into the README's Speed section)."""
    lines = [
        "| what | measured | target | peer / floor | ratio | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row.note:
            lines.append(f"| {row.bench} ({row.name}) | {row.note} | | | | - |")
            continue
        target = f"{row.target}x" if row.target not in ("", "-") else "-"
        lines.append(
            f"| {row.what} | {row.measured} | {target} | {row.peer} | "
            f"{row.value:.3g}x | {row.met} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    scripts = [Path(a) for a in argv] or sorted(BENCH_DIR.glob("bench_*.py"))
    load_before = os.getloadavg()[0]
    rows: list[Row] = []
    failed = 0
    for script in scripts:
        found, code = run_bench(script)
        rows.extend(found)
        failed += code != 0
    print("\n" + table(rows))
    print(
        f"\nload average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after, "
        f"on {os.cpu_count()} CPUs; missed targets are reported, not failed"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
