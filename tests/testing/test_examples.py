"""SOP Examples as tests: symbols, fixtures, subset comparison, diffs, ``sop test``.

The engine part is exercised with a small ledger SOP and its own registry (real
parser, runner and SQLite journal; no payment system). ``sop test
payment-processing`` then runs the seed's two Examples against the real sandbox.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from engine.binding.registry import Registry
from engine.language.example_symbols import example_diagnostics
from engine.language.parser import parse
from engine.storage.journal import Journal
from engine.testing.examples import Bindings, compare, is_symbol, run_examples
from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]

LEDGER = """\
# Ledger SOP

**Version**: 1.0.0

## Overview

Books amounts on accounts.

## Parameters

### Required
- **account** (string): Account identifier
  - Format: `acct_[a-zA-Z0-9]+`

### Optional
- **amount** (integer): Amount in cents
  - Constraints: Must be positive, max 1000
- **entry** (string): Entry to reverse
  - Format: `ent_[a-zA-Z0-9]+`

## Steps

### 1. Book

**Actions**:
- MUST book the amount on the account

## Examples

### Example 1: Book

```
Input:
  account: acct_MAIN
  amount: {first}

Expected Output:
  entry: ent_FIRST
  amount: 10
  account: acct_MAIN
```

### Example 2: Reverse

```
Input:
  account: acct_MAIN
  entry: ent_FIRST
  amount: {second}

Expected Output:
  entry: ent_SECOND
  reverses: ent_FIRST
  amount: {second}
```
"""


def ledger(first: int = 10, second: int = 5) -> Any:
    return parse(LEDGER.format(first=first, second=second), path="sops/ledger.sop.md")


@pytest.fixture
def registry() -> tuple[Registry, list[str]]:
    reg = Registry()
    provisioned: list[str] = []
    counter = [0]

    @reg.action("book the amount on the account")
    def book(ctx: Any) -> None:
        counter[0] += 1
        ctx.output.update(
            entry=f"ent_{counter[0]}x{ctx.run_id[:6]}",
            amount=ctx.params["amount"],
            account=ctx.params["account"],
        )
        if ctx.params.get("entry"):
            ctx.output["reverses"] = ctx.params["entry"]
        ctx.output["extra"] = "not shown in the example"

    @reg.fixture("acct_")
    def account(services: Any, symbol: str) -> str:
        provisioned.append(symbol)
        return f"acct_real{len(provisioned)}"

    return reg, provisioned


def test_symbols() -> None:
    assert is_symbol("cus_ABC123") and is_symbol("pi_XYZ789") and is_symbol("plan_BASIC")
    assert not is_symbol("cus_d11vLwtJEuuqUx") and not is_symbol("usd") and not is_symbol("x_123")


def test_examples_bind_symbols_and_compare_as_subset(
    registry: tuple[Registry, list[str]], tmp_path: Path
) -> None:
    reg, provisioned = registry
    with Journal(tmp_path / "j.db") as journal:
        results = run_examples(ledger(), registry=reg, journal=journal)
    assert [r.passed for r in results] == [True, True], [r.report() for r in results]
    assert provisioned == ["acct_MAIN"]  # provisioned once, then reused through its binding
    first, second = results
    assert first.actual["account"] == "acct_real1" and "extra" in first.actual
    assert second.actual["reverses"] == first.actual["entry"]  # ent_FIRST carried over


def test_mismatch_reports_a_unified_diff(
    registry: tuple[Registry, list[str]], tmp_path: Path
) -> None:
    reg, _ = registry
    sop = parse(
        LEDGER.format(first=10, second=5).replace(
            "  amount: 10\n  account", "  amount: 11\n  account"
        )
    )
    with Journal(tmp_path / "j.db") as journal:
        first = run_examples(sop, registry=reg, journal=journal)[0]
    assert not first.passed
    assert first.problems == ["amount: expected 11, got 10"]
    assert "-amount: 11" in first.diff and "+amount: 10" in first.diff
    assert "extra" not in first.diff  # only the fields the example shows are compared


def test_compare_rules() -> None:
    b = Bindings()
    assert compare({"a": {"b": [1, 2]}}, {"a": {"b": [1, 2]}, "c": 3}, b) == []
    assert compare({"a": [1, 2]}, {"a": [1]}, b) == ["a: expected [1, 2], got [1]"]
    assert compare({"ok": True}, {"ok": 1}, b) == ["ok: expected True, got 1"]
    assert compare({"id": "pi_ONE"}, {"id": "pi_real"}, b) == [] and b.values == {
        "pi_ONE": "pi_real"
    }
    assert compare({"id": "pi_ONE"}, {"id": "pi_other"}, b) == [
        "id: expected 'pi_real', got 'pi_other'"
    ]
    assert compare({"id": "pi_TWO"}, {}, b) == ["id: missing (expected a value for symbol pi_TWO)"]


def test_unbound_symbol_without_fixture_is_a_clear_problem(tmp_path: Path) -> None:
    reg = Registry()
    reg.action("book the amount on the account")(lambda ctx: None)
    with Journal(tmp_path / "j.db") as journal:
        first = run_examples(ledger(), registry=reg, journal=journal)[0]
    assert not first.passed
    assert "acct_MAIN" in first.problems[0] and "no fixture" in first.problems[0]


def test_lint_rule_amount_larger_than_the_producing_example() -> None:
    assert example_diagnostics(ledger(10, 5)) == []
    (warning,) = example_diagnostics(ledger(10, 50))
    assert warning.code == "SOP135" and "example 2" in warning.message and "50" in warning.message
    from engine.language.catalog import load

    (seed,) = example_diagnostics(load("payment-processing"))
    assert "15000 of pi_XYZ789" in seed.message and "amount 2500" in seed.message


def _sop_test(*names: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return sop_cli("test", *names, cwd=ROOT, env=env, timeout=180)


def test_sop_test_runs_the_seed_examples_against_the_sandbox(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        **sandbox.env(),
        "SOP_JOURNAL": str(tmp_path / "j.db"),
        "SOP_OUTBOX": str(tmp_path / "o"),
    }
    done = _sop_test("payment-processing", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS payment-processing example 1: Simple Charge" in done.stdout
    assert "PASS payment-processing example 2: Refund with Confirmation" in done.stdout
    assert "2 passed, 0 failed" in done.stdout
    methods = [(r["method"], r["path"]) for r in sandbox.requests()]
    assert methods.count(("POST", "/v1/payment_intents")) == 1
    assert ("POST", "/v1/refunds") not in methods  # Example 2 pauses before any refund


def test_sop_test_fails_with_exit_1_and_a_diff(tmp_path: Path) -> None:
    sops = tmp_path / "sops"
    sops.mkdir()
    text = LEDGER.format(first=10, second=5).replace(
        "  amount: 10\n  account", "  amount: 12\n  account"
    )
    (sops / "ledger.sop.md").write_text(text)
    (tmp_path / "ledger_handlers.py").write_text(
        textwrap.dedent(
            """
            from engine.binding.registry import action, fixture

            @action("book the amount on the account", sop="ledger")
            def book(ctx):
                ctx.output.update(entry="ent_x" + ctx.run_id[:4], amount=ctx.params["amount"],
                                  account=ctx.params["account"], reverses=ctx.params.get("entry"))

            @fixture("acct_")
            def account(services, symbol):
                return "acct_real"
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(tmp_path),
        "SOP_JOURNAL": str(tmp_path / "j.db"),
        "SOP_TEST_SANDBOX": "0",
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "test",
            "ledger",
            "--handlers",
            "ledger_handlers",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL ledger example 1: Book" in done.stdout
    assert "-amount: 12" in done.stdout and "+amount: 10" in done.stdout
    assert "PASS ledger example 2: Reverse" in done.stdout
    unknown = subprocess.run(
        [sys.executable, "-m", "engine", "test", "no-such-sop"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert unknown.returncode == 2 and "no-such-sop" in unknown.stderr


def test_examples_are_pytest_items(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text("def test_nothing():\n    pass\n")
    env = {
        **os.environ,
        **sandbox.env(),
        "SOP_JOURNAL": str(tmp_path / "j.db"),
        "SOP_OUTBOX": str(tmp_path / "o"),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "--sop-examples",
            "--sop",
            "payment-processing",
            str(tmp_path / "test_empty.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout  # test_nothing + the seed's two Examples
