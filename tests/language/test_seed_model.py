"""The seed SOP's model is pinned: the fidelity rules for Agent SOPs (whole sentences,
strongest keyword, nested tasks, sub-steps, conditions) must not move one id, level or
text of the house style. Regenerate the snapshot only for a deliberate change."""

from __future__ import annotations

import json
from pathlib import Path

from engine.language.lint import lint
from engine.language.parser import parse

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"
SNAPSHOT = ROOT / "tests" / "fixtures" / "seed_model.json"


def _model() -> dict[str, list[list[object]]]:
    sop = parse(SEED.read_bytes(), path="sops/payment-processing.sop.md")
    return {
        "actions": [
            [a.id, a.level.value, a.keyword, a.text, a.block, a.branch] for a in sop.all_actions()
        ],
        "steps": [[s.number, s.title, s.line] for s in sop.steps],
        "lint": [[d.code, d.severity.value, d.line, d.message] for d in lint(sop)],
    }


def test_seed_actions_ids_levels_and_texts_are_unchanged() -> None:
    expected = json.loads(SNAPSHOT.read_text("utf-8"))
    got = _model()
    assert got["steps"] == expected["steps"]
    assert got["actions"] == expected["actions"]


def test_seed_lint_is_unchanged() -> None:
    expected = json.loads(SNAPSHOT.read_text("utf-8"))
    assert _model()["lint"] == expected["lint"]
