"""``bench/report.py`` (``make bench``) turns each bench's RATIO lines into one table.

Run as a subprocess on stand-in benches, the way ``make bench`` runs it: tests never
import bench/. No timings here; the stand-ins print fixed lines.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPORT = Path(__file__).resolve().parents[2] / "bench" / "report.py"


def _report(tmp_path: Path, benches: dict[str, str]) -> subprocess.CompletedProcess[str]:
    scripts = []
    for name, body in benches.items():
        script = tmp_path / f"bench_{name}.py"
        script.write_text(body, encoding="utf-8")
        scripts.append(str(script))
    return subprocess.run(
        [sys.executable, str(REPORT), *scripts],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _row(output: str, first_cell: str) -> list[str]:
    for line in output.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row {first_cell!r} in:\n{output}")


def test_each_ratio_line_becomes_a_row_that_says_whether_its_target_is_met(
    tmp_path: Path,
) -> None:
    done = _report(
        tmp_path,
        {
            "a": "print('detail the bench likes')\n"
            "print(\"RATIO name=steps value=58.1 target='>=50' what='per step vs X' "
            "measured='126 us' peer='X 7.3 ms'\")\n"
            "print(\"RATIO name=charge value=2.1 target='<=1.25' what='a charge' "
            "measured='55 ms' peer='SDK 26 ms'\")\n",
            "b": "print(\"RATIO name=info value=6.9 target=- what='shown only' "
            "measured='1 ms' peer='2 ms'\")\n",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "detail the bench likes" in done.stdout  # each bench's own output is echoed
    assert _row(done.stdout, "per step vs X") == [
        "per step vs X",
        "126 us",
        ">=50x",
        "X 7.3 ms",
        "58.1x",
        "yes",
    ]
    assert _row(done.stdout, "a charge")[-2:] == ["2.1x", "NO"]
    assert _row(done.stdout, "shown only")[2:] == ["-", "2 ms", "6.9x", "-"]


def test_a_skipped_failed_or_silent_bench_gets_a_row_and_a_failure_fails_the_report(
    tmp_path: Path,
) -> None:
    done = _report(
        tmp_path,
        {
            "peerless": "print(\"SKIP name=dbos reason='no .venv-bench'\")\n",
            "broken": "raise SystemExit(3)\n",
            "silent": "print('no summary')\n",
        },
    )
    assert done.returncode == 1
    assert _row(done.stdout, "bench_peerless (dbos)")[1] == "skipped: no .venv-bench"
    assert _row(done.stdout, "bench_broken (-)")[1] == "failed (exit 3)"
    assert _row(done.stdout, "bench_silent (-)")[1] == "no RATIO line"
