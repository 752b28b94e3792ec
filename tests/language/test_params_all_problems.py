"""Parameter problems all at once, one line each naming the parameter; the money hint
only for money; "did you mean" for a mistyped SOP or parameter name in the CLI, the
Python API and MCP tool errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

import engine
from engine.errors import ParameterError, UsageError
from engine.language.params import validate
from engine.language.parser import parse
from tests.support.cli import sop_cli

SOP = """\
# Ledger Entry

**Version**: 1.0.0

## Overview

Books an amount.

## Parameters

### Required
- **account** (string): Account identifier
  - Format: `acct_[a-zA-Z0-9]+`
- **count** (integer): Number of entries
  - Constraints: Must be positive, max 10

### Optional
- **amount** (integer): Amount in cents
  - Constraints: Must be positive, max 1000

## Steps

### 1. Book

**Actions**:
- MUST book the entry
"""

HANDLERS = """\
from engine.binding.registry import action


@action("book the entry")
def book(ctx):
    ctx.output["booked"] = True
"""

MONEY = "amounts are integer minor units"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "ledger-entry.sop.md").write_text(SOP, encoding="utf-8")
    (tmp_path / "ledger_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


def _sop(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    journal = str(project / "journal.db")
    return sop_cli(*args, "--journal", journal, cwd=project, drop=["SOP_JOURNAL"])


def test_cli_reports_every_problem_one_line_each_and_runs_nothing(project: Path) -> None:
    proc = _sop(
        project,
        "run",
        "ledger-entry",
        "-p",
        "account=savings",
        "-p",
        "count=three",
        "-p",
        "amount=5000",
        "-p",
        "acount=acct_X",
    )
    assert proc.returncode == 2, proc.stdout
    assert proc.stdout == ""
    (line,) = proc.stderr.splitlines()  # one line holding every problem
    head, _, rest = line.partition(": invalid parameters: ")
    assert head == "sop: error"
    # problems in one line: "name: ...; name: ..." (a problem may itself hold "; did you")
    found = re.findall(
        r"(?:^|; )(account|acount|amount|count): (.*?)(?=; (?:account|acount|amount|count): |$)",
        rest,
    )
    assert [name for name, _ in found] == ["account", "acount", "amount", "count"]
    by_name = {name: f"{name}: {text}" for name, text in found}
    assert "'savings' does not match ^acct_[a-zA-Z0-9]+$" in by_name["account"]
    assert "did you mean 'account'?" in by_name["acount"]
    assert "5000 is not <= 1000" in by_name["amount"]
    assert "'three' is not an integer" in by_name["count"]
    assert MONEY not in by_name["count"]  # a count is no money
    assert not (project / "journal.db").exists()

    money = _sop(project, "plan", "ledger-entry", "-p", "account=acct_A", "-p", "count=1",
                 "-p", "amount=12.50")  # fmt: skip
    assert money.returncode == 2
    assert (
        f"amount: '12.50' is not an integer: ASCII digits 0-9 with an optional sign ({MONEY}"
        in (money.stderr)
    )


def test_cli_did_you_mean_for_a_mistyped_sop_name(project: Path) -> None:
    proc = _sop(project, "run", "ledger-entyr", "-p", "account=acct_A")
    assert proc.returncode == 2
    assert "unknown SOP 'ledger-entyr'; did you mean 'ledger-entry'?" in proc.stderr
    far = _sop(project, "run", "zzz")
    assert far.returncode == 2 and "did you mean" not in far.stderr


def test_api_all_at_once_money_hint_and_did_you_mean(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sop = parse(SOP, path="sops/ledger-entry.sop.md")
    with pytest.raises(ParameterError) as caught:
        validate(sop, {"account": "x", "count": 2.0, "amount": 10.0, "cuont": 1})
    problems = caught.value.problems
    assert [p.partition(":")[0] for p in problems] == ["account", "amount", "count", "cuont"]
    amount, count = problems[1], problems[2]
    assert "is not of type integer" in amount and MONEY in amount
    assert "is not of type integer" in count and MONEY not in count
    assert "did you mean 'count'?" in problems[3]

    monkeypatch.chdir(project)
    with pytest.raises(UsageError, match="did you mean 'ledger-entry'"):
        engine.run("ledger-entri", {"account": "acct_A", "count": 1})


@asynccontextmanager
async def mcp_server(cwd: Path) -> AsyncIterator[Client]:
    """A real ``sop mcp`` subprocess serving the project (the MCP SDK's own client)."""
    argv = ["-m", "engine", "mcp", "--journal", str(cwd / "journal.db")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOP_", "STRIPE_"))}
    params = StdioServerParameters(
        command=sys.executable,
        args=[*argv, "--handlers", "ledger_handlers"],
        cwd=str(cwd),
        env={**env, "PYTHONPATH": str(cwd)},
    )
    with (cwd / "server.log").open("a", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
            yield client


def test_mcp_errors_say_did_you_mean(project: Path) -> None:
    async def body() -> None:
        async with mcp_server(project) as client:
            unknown = await client.call_tool("describe_sop", {"name": "ledger-entyr"})
            assert unknown.is_error
            assert "did you mean 'ledger-entry'?" in _text(unknown)
            bad = await client.call_tool(
                "ledger_entry", {"account": "acct_A", "count": 1, "amuont": 5}
            )
            assert bad.is_error and "did you mean 'amount'?" in _text(bad)
            with pytest.raises(MCPError, match="did you mean 'ledger_entry'"):
                await client.call_tool("ledger_entyr", {})

    anyio.run(body)


def _text(result: Any) -> str:
    return "\n".join(block.text for block in result.content)
