"""Parse cost vs mistune's own AST parse of the same text, in the same process.

Budget: parsing the seed to the full model (cold: no memoized inline text) costs at most 1.5x
``mistune.create_markdown(renderer="ast", plugins=["table"])(text)``.
Prints per-file times and ratios; exits 1 when the seed is over budget, or when the
parser's block tokens (its fast path for plain lists) differ from stock mistune's on
the seed, the fixtures, the corpus or random SOP-like documents.
"""

from __future__ import annotations

import random
import sys
import timeit
from pathlib import Path
from typing import Any

import mistune
import yaml
from mistune.core import BlockState

from engine.language.parser import _markdown, _simple_yaml, _yaml_loader, clear_caches, parse

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 1.5


def measure(label: str, text: str, number: int, repeat: int = 9) -> float:
    """Best-of-``repeat`` for each, the two interleaved so load on a shared box hits both."""
    md = mistune.create_markdown(renderer="ast", plugins=["table"])
    md(text)
    parse(text)  # warm both (imports, compiled patterns)
    # cold: inline results memoized by an earlier call would flatter a repeated text
    floor_t = timeit.Timer(lambda: md(text))
    ours_t = timeit.Timer(lambda: (clear_caches(), parse(text)))
    floor = ours = float("inf")
    for _ in range(repeat):
        floor = min(floor, floor_t.timeit(number) / number * 1000)
        ours = min(ours, ours_t.timeit(number) / number * 1000)
    ratio = ours / floor
    print(
        f"{label:<28} {len(text):>8} chars  mistune {floor:8.3f} ms  parse {ours:8.3f} ms  "
        f"ratio {ratio:5.2f}"
    )
    return ratio


_PIECES = (
    *("- a", "- b c", "  - d", "", "", "# H", "### 2. Step", "text", "  text", "   - x"),
    *("    - y", "* s", "1. o", "- **b** (t): x", "  - V: `a` | `b`", "---", "```", "```p"),
    *("> q", "- ", "-", "- *", "- **", "- 2. x", "- [a]: b", "- # h", "- > q", "- <div>"),
    *("|a|b|", "|-|-|", "- x ", "\t- t", "- a\tb", "  ", "===", "- `x`", "- ```", "<!-- c -->"),
    *("  - - z", "- (x)", '- "q"', "#x", "- ~~~", "~~~", "- ***", "- *x*", "  -", "\f"),
    *("**Actions**:", "** x", "***", "+ p", "1) q", "[x]: /u", "- a\r", " - b", "- \u00a0x"),
    *("**Purpose**: p", "**B** x", "\u00a0", "    code", "\tcode", "**x", "**a**", "a | b"),
)


def _blocks(md: mistune.Markdown, text: str) -> list[dict[str, Any]]:
    state = BlockState()
    state.process(text)
    md.block.parse(state)
    return _public(state.tokens)


def _public(tokens: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tokens without the parser's own ``_line`` stamps."""
    return [
        {k: _public(v) if k == "children" else v for k, v in t.items() if not k.startswith("_")}
        for t in tokens
    ]


def check_tokens(texts: list[str], random_docs: int, seed: int = 0) -> int:
    """How many documents the parser's block tokens differ from stock mistune's on."""
    stock = mistune.create_markdown(renderer="ast", plugins=["table"])
    ours = _markdown()
    rng = random.Random(seed)
    docs = [t if t.endswith("\n") else t + "\n" for t in texts]
    for _ in range(random_docs):
        lines = [rng.choice(_PIECES) for _ in range(rng.randint(1, 12))]
        docs.append("\n".join(lines) + rng.choice(["\n", "", "\n\n"]))
    bad = [d for d in docs if _blocks(stock, d) != _blocks(ours, d)]
    for doc in bad[:3]:
        print(f"token mismatch: {doc[:200]!r}")
    print(f"block tokens vs stock mistune: {len(docs) - len(bad)}/{len(docs)} documents agree")
    return len(bad)


_YAML_KEYS = ("a", "amount", "yes", "null", "On", "_x", "1", "Input", "Expected Output", "b c")
_YAML_VALUES = (
    *("charge", "2500", "-3", "1.5", "1_000", "0x1F", "017", "0b11", "true", "No", "NULL"),
    *("~", "2026-01-20", "cus_A1", "1e5", "1.0e+5", ".inf", "+7", "a/b", "12:30", "'q'"),
    *('"q"', "[1]", "{a: 1}", "a # c", "a ", "NaN", "0o17", "-0", "00", "1.", "3.14_15"),
    *('"a $1. b"', "15000  # $150", '"a\\"b"', "'it''s'", '"\x07"', "a b  c", "a, b", "(x)"),
    *("$5", "a#b", '""', "- x", '"x"#c', "1 2", "-", "a:", "a: b", "x\ty"),
)


def check_yaml(texts: list[str], random_docs: int) -> int:
    """How many example blocks the parser's YAML fast path reads unlike yaml.load."""
    rng = random.Random(0)
    blocks = [b for t in texts for b in t.split("```") if "Input:" in b]
    for _ in range(random_docs):
        lines = []
        for _ in range(rng.randint(1, 10)):
            indent = "  " * rng.choice((0, 0, 1, 1, 2)) if rng.random() < 0.9 else " \t"
            value = rng.choice(("", " # c", *(" " + v for v in _YAML_VALUES)))
            lines.append(f"{indent}{rng.choice(_YAML_KEYS)}:{value}")
        blocks.append("\n".join(lines) + "\n")
    bad = fast = 0
    for block in blocks:
        ours = _simple_yaml(block)
        if ours is None:
            continue
        fast += 1
        try:
            theirs = yaml.load(block, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            theirs = exc
        if repr(ours) != repr(theirs):
            bad += 1
            print(f"yaml mismatch: {block[:200]!r}")
    print(f"example YAML fast path vs yaml.load: {fast - bad}/{fast} blocks agree")
    return bad


def main() -> int:
    seed = (ROOT / "sops" / "payment-processing.sop.md").read_text(encoding="utf-8")
    files = [*sorted((ROOT / "sops").glob("*.md")), *sorted((ROOT / "tests").rglob("*.md"))]
    corpus = Path("/work/shared/corpus/agent-sop")
    files += sorted(corpus.glob("*.md")) if corpus.is_dir() else []
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    mismatches = check_tokens(texts, 5000) + check_yaml(texts, 5000)
    ratio = measure("seed (payment-processing)", seed, 100, repeat=15)
    for path in sorted((ROOT / "tests" / "fixtures" / "agent-sop").glob("*.sop.md")):
        measure(path.name, path.read_text(encoding="utf-8"), 50)
    head, _, tail = seed.partition("## Success Criteria")
    steps = head.split("### 1. ", 1)[1]
    big = (
        head.split("### 1. ", 1)[0]
        + "".join(
            f"### {n}. " + steps.split("\n", 1)[1] if n > 1 else "### 1. " + steps
            for n in range(1, 61)
        )
        + "## Success Criteria"
        + tail
    )
    measure("seed with 60x the steps", big, 5)
    verdict = "ok" if ratio <= BUDGET else "OVER BUDGET"
    print(f"seed ratio {ratio:.2f} (budget {BUDGET}): {verdict}")
    return 0 if ratio <= BUDGET and not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
