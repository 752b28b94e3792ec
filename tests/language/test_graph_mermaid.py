"""`sop graph --format mermaid` output parses with mermaid's own parser (GitHub's renderer).

The parser runs in Node.js (tests/mermaid/check.mjs); `make test` installs it into
tests/mermaid/node_modules. Without Node.js or that install the test is skipped and
says why; CI has both.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from engine.language.catalog import entries, load
from engine.language.graph import STATUSES, to_mermaid
from engine.language.parser import parse
from tests.support.sops import AWKWARD

HERE = Path(__file__).resolve().parents[1]
CHECKER = HERE / "mermaid" / "check.mjs"
MODULES = HERE / "mermaid" / "node_modules" / "mermaid"
CORPUS = HERE / "fixtures" / "agent-sop"


def _node() -> str:
    node = shutil.which("node")
    if node is None or not MODULES.is_dir():
        pytest.skip("needs Node.js and `npm ci --prefix tests/mermaid` (make test does both)")
    return node


def test_every_shipped_and_corpus_graph_parses(tmp_path: Path) -> None:
    node = _node()
    sops = [load(str(entry.path)) for entry in entries()]
    sops += [load(str(path)) for path in sorted(CORPUS.glob("*.sop.md"))]
    sops.append(parse(AWKWARD, path="awkward.sop.md"))
    files = []
    for index, sop in enumerate(sops):
        target = tmp_path / f"{index}-{sop.name}.mmd"
        target.write_text(to_mermaid(sop), encoding="utf-8")
        files.append(str(target))
        # drawn on a run: one node per line, every status's classDef, the legend
        actions = sop.all_actions()
        statuses = {a.id: STATUSES[i % len(STATUSES)] for i, a in enumerate(actions)}
        coloured = tmp_path / f"{index}-{sop.name}-run.mmd"
        coloured.write_text(to_mermaid(sop, statuses), encoding="utf-8")
        files.append(str(coloured))
    proc = subprocess.run([node, str(CHECKER), *files], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ok ") == len(files)


def test_the_checker_rejects_broken_mermaid(tmp_path: Path) -> None:
    node = _node()
    broken = tmp_path / "broken.mmd"
    broken.write_text('flowchart TD\n  a["x"] --> b[y(z]\n', encoding="utf-8")
    proc = subprocess.run(
        [node, str(CHECKER), str(broken)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"error {broken}: Parse error")
