"""Hostile SOPs and parameters finish quickly: each case runs in a subprocess with a
timeout, so a hang fails its test instead of hanging the suite (issue 9, defect 5).

The cases: a catastrophic-backtracking ``Format`` (``(a+)+``) against a 30-character
value, patterns RE2 cannot run (a lint error, never Python's ``re``), a YAML alias bomb
in an example or the front matter, and a 150,000-character action line.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.binding.normalize import normalize
from engine.language.lint import lint
from engine.language.params import problems, schema_for
from engine.language.parser import parse
from engine.language.sop_regex import sop_pattern
from tests.support.cli import sop_cli

MAX_LINE = 4_000  # engine.language.parser.MAX_LINE (written out so the test imports on old code)

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"


def bounded(code: str, seconds: float = 30) -> Any:
    """Run ``code`` in a fresh interpreter; its last stdout line is JSON. A hang fails."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=seconds,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {seconds} s: the input is not bounded")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def sop_with_format(pattern: str) -> str:
    return textwrap.dedent(
        f"""\
        # Pattern Demo

        ## Overview

        Checks a name.

        ## Parameters

        - **name** (string): a name
          - Format: `{pattern}`

        ## Steps

        ### 1. Check

        **Actions**:
        - MUST log the name
        """
    )


FORMAT_LINE = 10  # the "- Format:" line above


# --------------------------------------------------------------------------- patterns


def test_catastrophic_format_is_matched_in_linear_time(tmp_path: Path) -> None:
    path = tmp_path / "redos.sop.md"
    path.write_text(sop_with_format("(a+)+"), encoding="utf-8")
    found = bounded(
        f"""
        import json, time
        from engine.language.lint import lint
        from engine.language.params import problems
        from engine.language.parser import parse
        sop = parse(open({str(path)!r}, "rb").read(), path={str(path)!r})
        errors = [d.code for d in lint(sop) if d.severity.value == "error"]
        started = time.perf_counter()
        out = [problems(sop, {{"name": v}}) for v in ("a" * 30 + "!", "a" * 100_000 + "!")]
        good = problems(sop, {{"name": "a" * 100_000}})
        print(json.dumps([errors, out, good, time.perf_counter() - started]))
        """
    )
    errors, rejected, good, _seconds = found  # bounded by the hang guard, not timed
    assert errors == []  # RE2 runs (a+)+ in linear time: nothing for lint to refuse
    assert all(len(p) == 1 and p[0].startswith("name:") for p in rejected), rejected
    assert good == []


@pytest.mark.parametrize(
    "pattern",
    [r"(a)\1", r"(?=a)a", r"(?!b)a", r"(?<=x)a", r"(?<!x)a", r"(?P<x>a)(?P=x)"],
)
def test_a_pattern_re2_cannot_run_is_a_lint_error_and_never_matches(
    tmp_path: Path, pattern: str
) -> None:
    path = tmp_path / "bad.sop.md"
    path.write_text(sop_with_format(pattern), encoding="utf-8")
    sop = parse(path.read_bytes(), path=str(path))
    found = [d for d in lint(sop) if d.code == "SOP120"]
    assert len(found) == 1, found
    (d,) = found
    assert d.severity.value == "error" and d.line == FORMAT_LINE and d.path == str(path)
    assert pattern in d.message and "RE2" in d.message and "lookaround" in d.message
    # the pattern is left out of the schema (never matched with backtracking re), and
    # the lint error keeps the SOP from running
    assert "pattern" not in schema_for(sop)["properties"]["name"]


def test_an_overlay_pattern_re2_cannot_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "schemas").mkdir()
    path = tmp_path / "sops" / "demo.sop.md"
    path.write_text(sop_with_format("[a-z]+"), encoding="utf-8")
    overlay = {"properties": {"name": {"pattern": "^(?=a)[a-z]+$"}}}
    (tmp_path / "schemas" / "demo.params.schema.json").write_text(json.dumps(overlay))
    sop = parse(path.read_bytes(), path=str(path))
    found = [d for d in lint(sop) if d.code == "SOP120"]
    assert len(found) == 1 and "(?=a)" in found[0].message and "overlay" in found[0].message
    assert found[0].severity.value == "error"
    # validation fails closed: the pattern is never run by Python's re
    assert problems(sop, {"name": "abc"}) == [
        "name: pattern '^(?=a)[a-z]+$' cannot be used (invalid perl operator: (?=)"
    ]


def test_dollar_is_the_end_of_the_value_not_before_a_final_newline() -> None:
    sop = parse(SEED.read_bytes(), path=str(SEED))
    params = {"operation": "charge", "amount": 100}
    assert problems(sop, {**params, "customer_id": "cus_ABC123"}) == []
    (problem,) = problems(sop, {**params, "customer_id": "cus_ABC123\n"})
    assert problem.startswith("customer_id:")
    assert problems(sop, {**params, "customer_id": "cus_ABC123", "currency": "usd\n"})


def test_seed_patterns_keep_their_meaning() -> None:
    sop = parse(SEED.read_bytes(), path=str(SEED))
    base = {"operation": "charge", "amount": 100}
    for good in ("cus_a", "cus_ABCxyz019"):
        assert problems(sop, {**base, "customer_id": good}) == []
    for bad in ("cus_", "cus_ab-c", "xcus_ab", "cus_ab c", "cus_\u00e9", "cus_\ud800"):
        assert problems(sop, {**base, "customer_id": bad}), bad


# --------------------------------------------------------------------------- YAML

BOMB = "".join(
    f"  {chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(11)
)
BOMB_SOP = f"""# Bomb

## Overview

An alias bomb in an example.

## Parameters

- **name** (string): a name

## Steps

### 1. Do

**Actions**:
- MUST log the name

## Examples

### Example 1: boom

```yaml
Input:
  name: x
  a: &a [x,x,x,x,x,x,x,x,x]
{BOMB}Expected Output:
  status: success
```
"""


def test_a_yaml_alias_bomb_in_an_example_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.sop.md"
    path.write_text(BOMB_SOP, encoding="utf-8")
    assert len(BOMB_SOP) < 5_000
    found = bounded(
        f"""
        import json, time
        from engine.language.lint import lint_paths
        started = time.perf_counter()
        found = [(d.code, d.line, d.message) for d in lint_paths([{str(path)!r}])]
        print(json.dumps([found, time.perf_counter() - started]))
        """
    )
    diagnostics, _seconds = found  # bounded by the hang guard, not timed
    first_alias = BOMB_SOP.splitlines().index("  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]") + 1
    assert ["SOP052", first_alias] in [d[:2] for d in diagnostics], diagnostics
    assert any("example 'boom' uses a YAML alias" in d[2] for d in diagnostics)


def test_a_yaml_alias_in_front_matter_is_refused() -> None:
    text = "---\ntitle: &t Demo\nowner: *t\n---\n# Demo\n"
    sop = parse(text, path="fm.sop.md")
    (d,) = [d for d in sop.diagnostics if d.code == "SOP052"]
    assert d.line == 3 and d.severity.value == "error" and "front matter" in d.message
    # a star that is no alias costs nothing and is read as before
    sop = parse("---\ntitle: 'a * b'\n---\n# Demo\n", path="fm.sop.md")
    assert sop.metadata["title"] == "a * b"


# --------------------------------------------------------------------------- long lines


@pytest.mark.parametrize("unit", ["[", "[a](", "![", "_ ", "\\", "\u201c"])
def test_a_150000_character_line_normalizes_in_linear_time(unit: str) -> None:
    found = bounded(
        f"""
        import json, time
        from engine.binding.normalize import normalize
        line = "MUST " + {unit!r} * (150_000 // len({unit!r}))
        started = time.perf_counter()
        normalize(line)
        print(json.dumps(time.perf_counter() - started))
        """
    )
    assert found < 2, found


def test_a_150000_character_action_line_is_refused_quickly(tmp_path: Path) -> None:
    path = tmp_path / "brackets.sop.md"
    head = "# Brackets\n\n## Overview\n\nx\n\n## Steps\n\n### 1. Do\n\n**Actions**:\n"
    path.write_text(head + "- MUST " + "[" * 150_000 + "\n", encoding="utf-8")
    found = bounded(
        f"""
        import json, time
        from engine.language.lint import lint_paths
        started = time.perf_counter()
        found = [(d.code, d.line, d.message) for d in lint_paths([{str(path)!r}])]
        print(json.dumps([found, time.perf_counter() - started]))
        """
    )
    diagnostics, _seconds = found  # bounded by the hang guard, not timed
    assert [d[:2] for d in diagnostics] == [["SOP016", 12]], diagnostics
    assert f"over the {MAX_LINE:,}-character limit" in diagnostics[0][2]


def test_a_line_at_the_limit_is_read() -> None:
    text = "# Long\n\n## Steps\n\n### 1. Do\n\n**Actions**:\n- MUST " + "x" * (MAX_LINE - 7)
    sop = parse(text, path="long.sop.md")
    assert not [d for d in sop.diagnostics if d.code == "SOP016"]
    assert len(sop.all_actions()) == 1
    assert normalize(sop.all_actions()[0].text) == "x" * (MAX_LINE - 7)


def test_a_yaml_alias_bomb_in_a_params_file_is_refused(tmp_path: Path) -> None:
    text = "operation: charge\ncustomer_id: cus_A\namount: 5\n" + BOMB.replace("  ", "")
    (tmp_path / "params.yaml").write_text(
        "a: &a [x,x,x,x,x,x,x,x,x]\n" + text + "description: *l\n", encoding="utf-8"
    )
    try:
        done = sop_cli(
            "plan", "payment-processing", "--params-file", "params.yaml", cwd=tmp_path, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a YAML alias bomb in --params-file never finished")
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "sop: error: --params-file params.yaml:5: a YAML alias; aliases are not read in "
        "parameters: write the values out\n"
    )


@pytest.mark.parametrize("unit", ["[a](", "["])
def test_a_whole_file_of_hostile_lines_at_the_limits_is_bounded(unit: str) -> None:
    """The worst case the limits allow: about MAX_BYTES of distinct MAX_LINE-long lines."""
    found = bounded(
        f"""
        import json
        from engine.language.lint import lint
        from engine.language.parser import MAX_BYTES, MAX_LINE, parse
        head = "# T\\n\\n## Overview\\n\\nx\\n\\n## Steps\\n\\n### 1. Do\\n\\n**Actions**:\\n"
        lines = []
        while sum(map(len, lines)) < MAX_BYTES - 2 * MAX_LINE:
            prefix = f"- MUST {{len(lines)}} "
            lines.append(prefix + {unit!r} * ((MAX_LINE - len(prefix)) // len({unit!r})))
        sop = parse(head + "\\n".join(lines) + "\\n", path="x.sop.md")
        found = [d.code for d in lint(sop) if d.severity.value == "error"]
        print(json.dumps([found, len(sop.all_actions())]))
        """,
        seconds=60,  # a hang guard, not a timing: the line limit keeps it linear
    )
    errors, actions = found
    assert errors == [] and actions > 100


def _shipped_patterns() -> list[str]:
    found: set[str] = set()
    for path in sorted((ROOT / "sops").glob("*.sop.md")):
        schema = schema_for(parse(path.read_bytes(), path=str(path)))
        found.update(p["pattern"] for p in schema["properties"].values() if "pattern" in p)
    return sorted(found)


@pytest.mark.parametrize("pattern", _shipped_patterns())
def test_shipped_patterns_mean_on_re2_what_they_meant_on_re(pattern: str) -> None:
    """Python's re and RE2 agree on the shipped patterns for every value without a newline."""
    search = sop_pattern(pattern)
    words = st.sampled_from(["cus_", "pi_", "sub_", "plan_", "price_", "usd", "_", "-", " ", "é"])
    chars = st.text(alphabet="abcAZ09_-. é\u0661\t", max_size=12)
    values = st.lists(st.one_of(words, chars), max_size=4).map("".join)

    @settings(max_examples=300, deadline=None, database=None)
    @given(values)
    def agree(value: str) -> None:
        assert search(value) == (re.search(pattern, value) is not None), value

    agree()
    assert len(_shipped_patterns()) >= 5
