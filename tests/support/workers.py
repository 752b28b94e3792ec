"""``sop worker`` processes for tests and benches: real subprocesses, never Celery's eager mode."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]


def worker_env(journal: str, broker: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a worker (and of the ``sop`` commands beside it)."""
    env = {k: v for k, v in os.environ.items() if k != "SOP_CRASH_AFTER"}
    env.update(
        SOP_JOURNAL=journal,
        SOP_BROKER=broker,
        SOP_BROKER_VISIBILITY_SECONDS="3",  # a dead worker's task is re-delivered in seconds
        SOP_WORKER_HEARTBEAT_SECONDS="1",
    )
    env.update(extra or {})
    return env


class Worker:
    """One ``sop worker`` subprocess; its log (stderr) in a file."""

    def __init__(self, env: Mapping[str, str], *args: str, name: str = "w") -> None:
        self.log_path = Path(tempfile.mkdtemp(prefix="sop-worker-")) / f"{name}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "worker", "--name", name, *args],
            cwd=ROOT,
            env=dict(env),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, text: str, timeout: float = 60) -> str:
        """Wait until the log holds ``text``; the log."""
        deadline = time.monotonic() + timeout
        while text not in (found := self.log()):
            assert time.monotonic() < deadline, f"no {text!r} in the worker's log:\n{found}"
            time.sleep(0.1)
        return found

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, its unacknowledged task stays with the broker."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def submit(env: dict[str, str], *params: str) -> str:
    """``sop run payment-processing --submit -q -p ...``: the run id it printed."""
    argv = ["run", "payment-processing", "--submit", "-q"]
    for param in params:
        argv += ["-p", param]
    proc = sop_cli(*argv, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", run_id), proc.stdout
    return run_id
