"""Run ``sop`` as a real subprocess, the way users and CI do (``python -m engine.cli.main``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path


def sop_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    drop: Iterable[str] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``sop ARGS`` in ``cwd``, with this process's environment minus ``drop``, plus ``env``."""
    dropped = set(drop)
    environ = {k: v for k, v in os.environ.items() if k not in dropped}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=cwd,
        env=environ,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pythonpath(*dirs: Path) -> str:
    """``dirs`` in front of the inherited PYTHONPATH (where a test's handler modules live)."""
    return os.pathsep.join([*map(str, dirs), os.environ.get("PYTHONPATH", "")])
