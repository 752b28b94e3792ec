"""The standing proof's fixtures and its figures in the pytest terminal summary."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.binding.packs import load_handlers
from engine.binding.registry import Registry
from engine.storage.journal import Journal
from tests.support.standing_proof import FIGURES, ROOT, SOAK


@pytest.fixture
def payments_registry() -> Registry:
    return load_handlers(["handlers.payments"], project_dir=ROOT)


@pytest.fixture
def proof_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Outbox and journal of this test in ``tmp_path``; fast retries; no inherited SOP_ knobs."""
    for name in list(os.environ):
        if name.startswith("SOP_") and name not in ("SOP_SOAK", "SOP_RELIABILITY_SEED"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SOP_OUTBOX", str(tmp_path / "outbox"))
    monkeypatch.setenv("SOP_JOURNAL", str(tmp_path / "journal.db"))
    monkeypatch.setenv("SOP_RETRY_BASE_SECONDS", "0.01")
    return tmp_path


@pytest.fixture
def journal(proof_env: Path) -> Iterator[Journal]:
    with Journal(proof_env / "journal.db") as jr:
        yield jr


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything here is marked ``reliability`` (``-m "not reliability"`` skips the proof)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.reliability)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    version = "soak" if SOAK else "short"
    terminalreporter.section(f"standing proof figures ({version} version)")
    for part, values in FIGURES.items():
        terminalreporter.write_line(f"{part}:")
        for name, value in values.items():
            terminalreporter.write_line(f"    {name}: {value}")
    target = os.environ.get("SOP_RELIABILITY_FIGURES")
    if target:
        Path(target).write_text(
            json.dumps({"version": version, "figures": FIGURES}, indent=2, default=str) + "\n",
            encoding="utf-8",
        )
