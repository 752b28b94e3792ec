"""``make demo`` (``python -m handlers.payments.demo``) tells its story in a screenful.

A real subprocess against the real sandbox it starts itself: every example and the
confirmed refund still run (exit 0), in at most 60 lines, with no schema JSON, no
Mermaid source and no "not reached" line per action; ``--details`` brings the whole
action reports back.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("SOP_", "STRIPE_"))}
    return subprocess.run(
        [sys.executable, "-m", "handlers.payments.demo", *args],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_fits_a_screen_and_still_runs_everything() -> None:
    done = _demo()
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    lines = out.splitlines()
    assert 30 <= len(lines) <= 60, out
    assert out.count("PASS payment-processing example") == 2
    assert "29 not reached" in out  # the paused runs, summarised
    assert sum("not reached" in line for line in lines) == 2  # one line per paused run
    assert '"$schema"' not in out and "flowchart" not in out
    assert "recorded refund re_" in out and "(exit code 0)" in out
    assert "skipped MAY L57 check fraud detection score if available: not applicable" in out
    assert lines[-1] == "demo finished: every step behaved as the SOP says"


def test_details_flag_shows_every_action_report() -> None:
    done = _demo("--details")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "passed   MUST      L53   verify customer_id exists in Stripe" in done.stdout
    assert len(done.stdout.splitlines()) > 100
