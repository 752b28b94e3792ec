"""The parser's fast paths (plain lists, simple example YAML) agree with stock mistune / yaml.

engine/language/parser.py builds the block tokens of plain ``- item`` lists itself and reads simple
example blocks without running the YAML parser; both must give exactly what mistune and
``yaml.load`` give. The comparisons live in bench/bench_parse.py (which also runs them);
here they gate every change, including a mistune or PyYAML upgrade.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from bench_parse import check_tokens, check_yaml  # noqa: E402

SOURCES = [*(ROOT / "sops").glob("*.sop.md"), *(ROOT / "tests" / "fixtures").rglob("*.sop.md")]
TEXTS = [p.read_text(encoding="utf-8") for p in sorted(SOURCES)]


def test_block_tokens_match_stock_mistune() -> None:
    assert check_tokens(TEXTS, random_docs=3000, seed=7) == 0


def test_example_yaml_fast_path_matches_yaml_load() -> None:
    assert check_yaml(TEXTS, random_docs=3000) == 0
