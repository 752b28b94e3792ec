"""``sop mcp`` driven by the MCP SDK's own stdio client, against a real server subprocess.

Every test starts ``[sys.executable, "-m", "engine", "mcp", ...]`` in a temporary
project (its own ``sops/``, handler module and journal) and talks to it over stdio.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import MCPError

from engine.language.resources import load_schema
from tests.support.mcp_client import mcp_server, run_async, server_env, text_of

REFUND_SOP = """# Refund Demo SOP

**Version**: 0.1.0
**Status**: Active

## Overview

Refunds an amount to a customer; refunds above $100 wait for a person to confirm.

## Parameters

- **amount** (integer): Amount in cents
  - Constraints: Must be positive, max 99999999
- **note** (string): Why the refund is made
  - Max length: 50

## Steps

### 1. Refund

**Actions**:
- MUST require confirmation for refunds > $100
- MUST issue the refund
- SHOULD send a receipt
"""

HANDLERS = """
from engine import ConfirmationRequired, action


@action("require confirmation for refunds > ${threshold:d}")
def gate(ctx, threshold):
    if ctx.params["amount"] > threshold * 100 and not ctx.confirmed:
        raise ConfirmationRequired(
            f"Refund amount exceeds ${threshold}. Please confirm.",
            {"amount": ctx.params["amount"]},
            output={"requires_confirmation": True},
        )


@action("issue the refund")
def issue(ctx):
    ctx.output["refunded"] = ctx.params["amount"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one SOP (refund-demo) and its handler module (demo_handlers)."""
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "refund-demo.sop.md").write_text(REFUND_SOP, encoding="utf-8")
    (tmp_path / "demo_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return tmp_path


_env = server_env
_text = text_of


# --------------------------------------------------------------------------- listing


def test_lists_one_tool_per_sop_plus_fixed_tools_and_prompts(project: Path) -> None:
    async def body() -> None:
        async with mcp_server(project) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert {"list_sops", "describe_sop", "plan_sop", "confirm_run", "inspect_run"} <= set(
                tools
            )
            assert {"refund_demo", "payment_processing"} <= set(tools)  # project + built-in
            refund = tools["refund_demo"]
            assert refund.description.startswith("Refunds an amount to a customer")
            assert set(refund.input_schema["properties"]) == {"amount", "note"}
            assert refund.output_schema == load_schema("run-result.schema.json")
            for tool in tools.values():
                Draft202012Validator.check_schema(tool.input_schema)
                assert tool.input_schema["type"] == "object"
            assert tools["list_sops"].annotations.read_only_hint is True
            assert tools["refund_demo"].annotations.read_only_hint is False

            prompts = {p.name for p in (await client.list_prompts()).prompts}
            assert {"refund-demo", "payment-processing"} <= prompts
            prompt = await client.get_prompt("refund-demo")
            text = prompt.messages[0].content.text
            assert text.startswith("Run this SOP: Refund Demo SOP.")
            assert text.endswith(REFUND_SOP)
            with pytest.raises(MCPError, match="unknown prompt"):
                await client.get_prompt("no-such-sop")

            listed = await client.call_tool("list_sops", {})
            rows = {row["name"]: row for row in listed.structured_content["sops"]}
            assert rows["refund-demo"]["tool"] == "refund_demo"
            assert rows["refund-demo"]["serving"] == "current"

    run_async(body)


def test_describe_and_plan_show_levels_and_bindings(project: Path) -> None:
    async def body() -> None:
        async with mcp_server(project) as client:
            described = await client.call_tool("describe_sop", {"name": "refund_demo"})
            assert not described.is_error
            lines = {a["text"]: a for a in described.structured_content["steps"][0]["actions"]}
            gate = lines["require confirmation for refunds > $100"]
            assert gate["level"] == "MUST" and gate["bound"] is True
            assert gate["handler"]["handler"] == "demo_handlers.gate"
            assert gate["handler"]["captures"] == {"threshold": "100"}
            assert lines["send a receipt"]["level"] == "SHOULD"
            assert lines["send a receipt"]["bound"] is False
            assert described.structured_content["unbound_required"] == []

            planned = await client.call_tool(
                "plan_sop", {"name": "refund-demo", "params": {"amount": 5}}
            )
            assert not planned.is_error, _text(planned)
            assert planned.structured_content["ok"] is True
            assert not (project / "journal.db").exists() or _runs(project) == []  # dry run

            bad_plan = await client.call_tool(
                "plan_sop", {"name": "refund-demo", "params": {"amount": -1}}
            )
            assert bad_plan.is_error and "amount" in _text(bad_plan)
            unknown = await client.call_tool("describe_sop", {"name": "nope"})
            assert unknown.is_error and "unknown SOP 'nope'" in _text(unknown)

    run_async(body)


def _runs(project: Path) -> list[Any]:
    from engine.storage.journal import Journal

    with Journal(project / "journal.db") as journal:
        return journal.runs()


# --------------------------------------------------------------------------- bad calls


BAD_CALLS: list[tuple[dict[str, Any], list[str]]] = [
    ({"amount": 0}, ["amount"]),
    ({"amount": "ten"}, ["amount"]),
    ({"amount": 5, "note": "x" * 51}, ["note"]),
    ({"amount": 5, "bogus": True}, ["bogus"]),
    ({"amount": -3, "note": 7, "extra": []}, ["amount", "note", "extra"]),
    ({"amount": 100000000}, ["amount"]),
]


def test_survives_1000_bad_calls_then_answers_a_good_one(project: Path) -> None:
    async def body() -> None:
        async with mcp_server(project) as client:
            started = time.perf_counter()
            for i in range(1000):
                arguments, names = BAD_CALLS[i % len(BAD_CALLS)]
                result = await client.call_tool("refund_demo", arguments)
                assert result.is_error, arguments
                problems = result.structured_content["problems"]
                assert len(problems) == len(names), problems
                for name in names:
                    assert any(p.startswith(f"{name}:") for p in problems), (name, problems)
                    assert f"- {name}:" in _text(result)
            elapsed = time.perf_counter() - started
            print(f"1000 bad calls in {elapsed:.2f}s ({elapsed:.2f} ms/call)")
            for name, arguments in (
                ("confirm_run", {"run_id": 5}),
                ("inspect_run", {}),
                ("describe_sop", {"name": 5}),
            ):
                bad = await client.call_tool(name, arguments)
                assert bad.is_error and "invalid arguments" in _text(bad)
            with pytest.raises(MCPError, match="unknown tool 'no_such_tool'"):
                await client.call_tool("no_such_tool", {})

            good = await client.call_tool("refund_demo", {"amount": 500, "note": "damaged"})
            assert not good.is_error, _text(good)
            assert good.structured_content["status"] == "succeeded"
            assert good.structured_content["output"] == {"refunded": 500}
            Draft202012Validator(load_schema("run-result.schema.json")).validate(
                good.structured_content
            )
        assert len(_runs(project)) == 1  # no bad call left a run behind

    run_async(body)


# --------------------------------------------------------------------------- limits

SLOW_SOP = """# Slow Demo SOP

**Version**: 0.1.0

## Overview

Waits as long as it is told; its name has a catastrophic-backtracking Format.

## Parameters

- **seconds** (integer): How long to wait
- **name** (string): A name
  - Format: `(a+)+`

## Steps

### 1. Wait

**Actions**:
- MUST wait as long as told
"""

SLOW_HANDLERS = """
import time

from engine import action


@action("wait as long as told")
def wait(ctx):
    time.sleep(ctx.params["seconds"])
"""


def test_one_slow_or_hostile_call_does_not_stop_the_server(project: Path) -> None:
    """A call past SOP_MCP_CALL_SECONDS is a tool error while other requests still answer."""
    (project / "sops" / "slow-demo.sop.md").write_text(SLOW_SOP, encoding="utf-8")
    (project / "slow_handlers.py").write_text(SLOW_HANDLERS, encoding="utf-8")
    slow: dict[str, Any] = {}

    async def slow_call(client: Client) -> None:
        started = time.perf_counter()
        slow["result"] = await client.call_tool("slow_demo", {"seconds": 20})
        slow["elapsed"] = time.perf_counter() - started

    async def prompt(call: Awaitable[Any]) -> Any:
        started = time.perf_counter()
        result = await call
        assert time.perf_counter() - started < 2, "the server did not answer promptly"
        return result

    async def body() -> None:
        env = {"SOP_MCP_CALL_SECONDS": "3", "SOP_MCP_MAX_ARGUMENT_BYTES": "10000"}
        handlers = ("demo_handlers", "slow_handlers")
        with anyio.fail_after(60):
            async with (
                mcp_server(project, env=env, handlers=handlers) as client,
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(slow_call, client)
                await anyio.sleep(0.5)  # the slow call is in flight on a worker thread
                for _ in range(3):
                    listed = await prompt(client.call_tool("list_sops", {}))
                    assert not listed.is_error
                    assert "slow-demo" in {row["name"] for row in listed.structured_content["sops"]}
                assert "slow_demo" in {t.name for t in (await prompt(client.list_tools())).tools}
                # (a+)+ against 30 characters: minutes of backtracking with Python's re
                hostile = await prompt(
                    client.call_tool("slow_demo", {"seconds": 0, "name": "a" * 30 + "!"})
                )
                assert hostile.is_error and "- name: " in _text(hostile), _text(hostile)
                big = await prompt(
                    client.call_tool("slow_demo", {"seconds": 0, "name": "a" * 20_000})
                )
                assert big.is_error, _text(big)
                assert "the limit is 10,000 bytes of JSON (SOP_MCP_MAX_ARGUMENT_BYTES)" in _text(
                    big
                )
            result = slow["result"]
            assert result.is_error
            assert "no answer within 3 s (SOP_MCP_CALL_SECONDS)" in _text(result), _text(result)
            assert 2.5 < slow["elapsed"] < 8, slow["elapsed"]

    run_async(body)
    log = (project / "server.log").read_text(encoding="utf-8")
    assert "slow_demo: no answer within 3 s; left running" in log


def test_call_limits_from_environment() -> None:
    from engine.agents.mcp_server import CallLimits
    from engine.errors import UsageError

    assert CallLimits.from_env({}) == CallLimits()
    limits = CallLimits.from_env({"SOP_MCP_CALL_SECONDS": "2.5", "SOP_MCP_MAX_ARGUMENT_BYTES": "9"})
    assert (limits.seconds, limits.argument_bytes) == (2.5, 9)
    for env in (
        {"SOP_MCP_CALL_SECONDS": "0"},
        {"SOP_MCP_CALL_SECONDS": "nan"},
        {"SOP_MCP_CALL_SECONDS": "soon"},
        {"SOP_MCP_MAX_ARGUMENT_BYTES": "-1"},
        {"SOP_MCP_MAX_ARGUMENT_BYTES": "\u0661"},
    ):
        with pytest.raises(UsageError, match="SOP_MCP_"):
            CallLimits.from_env(env)


def test_a_busy_server_refuses_calls_instead_of_piling_up_threads() -> None:
    from engine.agents.mcp_server import CallGate

    gate = CallGate(2)
    first, second = gate.take(), gate.take()
    assert first is not None and second is not None and gate.take() is None
    gate.settle(first)  # never started: the slot comes back at once
    third = gate.take()
    assert third is not None and gate.take() is None

    def work() -> Any:
        assert third is not None
        gate.settle(third)  # the caller gave up while the thread runs: the slot stays taken
        assert gate.take() is None
        return "done"

    assert gate.wrap(third, work) == "done"  # the thread ended: its slot is back
    assert gate.take() is not None


# --------------------------------------------------------------------------- confirmation


def test_paused_run_is_for_a_person_under_the_default_policy(project: Path) -> None:
    state: dict[str, Any] = {}

    async def paused() -> None:
        async with mcp_server(project) as client:
            result = await client.call_tool("refund_demo", {"amount": 15000})
            assert not result.is_error
            run = result.structured_content
            assert run["status"] == "paused"
            assert run["output"] == {"requires_confirmation": True}
            assert run["pending"]["token"] is None  # never shown to the agent
            assert run["pending"]["message"] == "Refund amount exceeds $100. Please confirm."
            assert "sopc_" not in _text(result)
            assert f"sop resume {run['run_id']} --confirm TOKEN" in _text(result)
            state["run_id"] = run["run_id"]

            refused = await client.call_tool(
                "confirm_run", {"run_id": run["run_id"], "token": "sopc_guess"}
            )
            assert refused.is_error
            assert "policy is 'human'" in _text(refused) and "sop resume" in _text(refused)
            assert "--allow-agent-confirm" in _text(refused)

            inspected = await client.call_tool("inspect_run", {"run_id": run["run_id"]})
            assert inspected.structured_content["run"]["status"] == "paused"
            assert inspected.structured_content["result"]["pending"]["token"] is None
            missing = await client.call_tool("inspect_run", {"run_id": "nope"})
            assert missing.is_error and "unknown run 'nope'" in _text(missing)

    run_async(paused)
    log = (project / "server.log").read_text(encoding="utf-8")
    command = next(line for line in log.splitlines() if state["run_id"] in line and "sopc_" in line)
    token = command.split("--confirm ")[1].split()[0]

    # the person confirms on the command line, with the token from the server's log
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "resume",
            state["run_id"],
            "--confirm",
            token,
            "--journal",
            str(project / "journal.db"),
            "--json",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["output"]["refunded"] == 15000

    async def after() -> None:
        async with mcp_server(project) as client:
            inspected = await client.call_tool("inspect_run", {"run_id": state["run_id"]})
            assert inspected.structured_content["run"]["status"] == "succeeded"

    run_async(after)


@pytest.mark.parametrize("how", ["flag", "env"])
def test_agent_policy_lets_the_agent_confirm(project: Path, how: str) -> None:
    args = ("--allow-agent-confirm",) if how == "flag" else ()
    env = {"SOP_MCP_CONFIRM": "agent"} if how == "env" else None

    async def body() -> None:
        async with mcp_server(project, *args, env=env) as client:
            run = (await client.call_tool("refund_demo", {"amount": 15000})).structured_content
            assert run["status"] == "paused"
            token = run["pending"]["token"]
            assert token and token.startswith("sopc_")
            wrong = await client.call_tool(
                "confirm_run", {"run_id": run["run_id"], "token": "sopc_wrong"}
            )
            assert wrong.is_error and "does not match" in _text(wrong)
            done = await client.call_tool("confirm_run", {"run_id": run["run_id"], "token": token})
            assert not done.is_error, _text(done)
            assert done.structured_content["status"] == "succeeded"
            assert done.structured_content["output"]["refunded"] == 15000
            again = await client.call_tool("confirm_run", {"run_id": run["run_id"], "token": token})
            assert again.is_error and re.search("already (used|succeeded)", _text(again))

    run_async(body)
    assert "confirmation policy: agent" in (project / "server.log").read_text(encoding="utf-8")


def test_bad_policy_value_is_a_usage_error(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "mcp"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env({"SOP_MCP_CONFIRM": "robot"}),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "sop: error: SOP_MCP_CONFIRM='robot': expected 'human' or 'agent'"
    ]


def test_missing_handler_module_is_one_line_not_a_server(project: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "mcp", "--handlers", "no_such_module"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1 and "no_such_module" in proc.stderr


# --------------------------------------------------------------------------- live reload


def test_live_reload_serves_edits_and_keeps_the_last_good_version(project: Path) -> None:
    sop_file = project / "sops" / "refund-demo.sop.md"

    def write(text: str) -> None:
        before = sop_file.stat().st_mtime_ns
        sop_file.write_text(text, encoding="utf-8")
        os.utime(sop_file, ns=(before + 1_000_000, before + 1_000_000))  # coarse clocks

    async def body() -> None:
        async with mcp_server(project) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "reason" not in tools["refund_demo"].input_schema["properties"]

            # a good edit: a new parameter and a new overview, served at once
            edited = REFUND_SOP.replace("Refunds an amount", "Refunds money").replace(
                "  - Max length: 50\n", "  - Max length: 50\n- **reason** (string): Reason code\n"
            )
            write(edited)
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert "reason" in tools["refund_demo"].input_schema["properties"]
            assert tools["refund_demo"].description.startswith("Refunds money")
            ok = await client.call_tool("refund_demo", {"amount": 5, "reason": "r1"})
            assert ok.structured_content["status"] == "succeeded", _text(ok)

            # a broken edit (misnumbered step, no Overview: lint errors): the good version stays
            write(
                edited.replace("### 1. Refund", "### 3. Refund").replace(
                    "## Overview", "## Summary"
                )
            )
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["refund_demo"].description.startswith("Refunds money")
            rows = {
                r["name"]: r
                for r in (await client.call_tool("list_sops", {})).structured_content["sops"]
            }
            assert rows["refund-demo"]["serving"] == "last_good"
            assert any("SOP101" in e for e in rows["refund-demo"]["lint_errors"])
            described = (
                await client.call_tool("describe_sop", {"name": "refund-demo"})
            ).structured_content
            assert described["serving"] == "last_good" and described["lint_errors"]
            still = await client.call_tool("refund_demo", {"amount": 5, "reason": "r2"})
            assert still.structured_content["status"] == "succeeded", _text(still)
            prompt = await client.get_prompt("refund-demo")
            assert "### 1. Refund" in prompt.messages[0].content.text  # the good text

            # a new SOP file appears as a tool; a broken new file does not
            (project / "sops" / "second-demo.sop.md").write_text(
                REFUND_SOP.replace("Refund Demo SOP", "Second Demo SOP"), encoding="utf-8"
            )
            (project / "sops" / "never-good.sop.md").write_text("# Never Good\n", encoding="utf-8")
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "second_demo" in tools and "never_good" not in tools
            rows = {
                r["name"]: r
                for r in (await client.call_tool("list_sops", {})).structured_content["sops"]
            }
            assert rows["never-good"]["serving"] == "none" and rows["never-good"]["tool"] is None
            assert rows["never-good"]["lint_errors"]

            # fixed again -> current; deleted -> gone
            write(edited)
            rows = {
                r["name"]: r
                for r in (await client.call_tool("list_sops", {})).structured_content["sops"]
            }
            assert (
                rows["refund-demo"]["serving"] == "current"
                and "lint_errors" not in rows["refund-demo"]
            )
            (project / "sops" / "second-demo.sop.md").unlink()
            tools = {t.name for t in (await client.list_tools()).tools}
            assert "second_demo" not in tools
            with pytest.raises(MCPError, match="unknown tool"):
                await client.call_tool("second_demo", {"amount": 5})

    run_async(body)
    log = (project / "server.log").read_text(encoding="utf-8")
    assert "still serving the last good version" in log and "SOP101" in log
    assert "never-good.sop.md" in log and "not served" in log


# --------------------------------------------------------------------------- legacy clients


def test_a_handshake_era_client_gets_the_same_tools_and_hears_of_edits(project: Path) -> None:
    from mcp import types

    heard: list[str] = []

    async def on_message(message: Any) -> None:
        if isinstance(
            message, types.ToolListChangedNotification | types.PromptListChangedNotification
        ):
            heard.append(message.method)

    async def body() -> None:
        argv = [
            "-m",
            "engine.cli.main",
            "mcp",
            "--handlers",
            "demo_handlers",
            "--journal",
            str(project / "j.db"),
        ]
        params = StdioServerParameters(
            command=sys.executable, args=argv, cwd=str(project), env=_env()
        )
        with (project / "server.log").open("a") as errlog:
            transport = stdio_client(params, errlog=errlog)
            async with Client(transport, mode="legacy", message_handler=on_message) as client:
                assert client.protocol_version == "2025-11-25"
                assert client.server_capabilities.tools.list_changed is True
                tools = {t.name for t in (await client.list_tools()).tools}
                assert "refund_demo" in tools
                result = await client.call_tool("refund_demo", {"amount": 5})
                assert result.structured_content["status"] == "succeeded"
                assert heard == []

                sop_file = project / "sops" / "refund-demo.sop.md"
                sop_file.write_text(
                    REFUND_SOP.replace("Refunds an amount", "Refunds money"), encoding="utf-8"
                )
                os.utime(sop_file, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
                await client.call_tool("list_sops", {})
                with anyio.fail_after(10):
                    while len(heard) < 2:
                        await anyio.sleep(0.05)
                assert heard == [
                    "notifications/tools/list_changed",
                    "notifications/prompts/list_changed",
                ]
                tools_now = {t.name: t for t in (await client.list_tools()).tools}
                assert tools_now["refund_demo"].description.startswith("Refunds money")
                assert len(heard) == 2  # told once per change

    run_async(body)


# --------------------------------------------------------------------------- Stripe sandbox


def test_payment_tool_charges_and_pauses_refunds_against_the_sandbox(
    stripe_sandbox: Any, tmp_path: Path
) -> None:
    """The seed SOP's tool with the real payment handlers, against localstripe."""
    stripe_sandbox.reset()
    env = stripe_sandbox.env()  # STRIPE_API_BASE / STRIPE_API_KEY of the sandbox
    stripe = stripe_sandbox.client()
    customer = stripe.v1.customers.create(params={"email": "ada@example.com"})
    card = stripe.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    stripe.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    refund = {"operation": "refund", "customer_id": customer.id, "amount": 15000}
    state: dict[str, Any] = {}

    async def human() -> None:
        async with mcp_server(tmp_path, env=env, handlers=("handlers.payments",)) as client:
            charge = await client.call_tool(
                "payment_processing",
                {"operation": "charge", "customer_id": customer.id, "amount": 20000},
            )
            assert not charge.is_error, _text(charge)
            output = charge.structured_content["output"]
            assert output["success"] is True and output["status"] == "succeeded"
            intent = stripe.v1.payment_intents.retrieve(output["transaction_id"])
            assert (intent.amount, intent.status, intent.customer) == (
                20000,
                "succeeded",
                customer.id,
            )
            state["pi"] = intent.id

            paused = await client.call_tool(
                "payment_processing", {**refund, "payment_intent": intent.id}
            )
            run = paused.structured_content
            assert not paused.is_error and run["status"] == "paused", _text(paused)
            assert run["output"]["message"] == "Refund amount exceeds $100. Please confirm."
            assert run["output"]["pending_refund"] == {"amount": 15000, "payment_intent": intent.id}
            assert run["pending"]["token"] is None and "sopc_" not in _text(paused)

            refused = await client.call_tool(
                "confirm_run", {"run_id": run["run_id"], "token": "sopc_x"}
            )
            assert refused.is_error and "sop resume" in _text(refused)
            inspected = await client.call_tool("inspect_run", {"run_id": run["run_id"]})
            assert inspected.structured_content["run"]["status"] == "paused"
        assert stripe.v1.refunds.list({"payment_intent": state["pi"]}).data == []  # nothing moved

    async def agent() -> None:
        async with mcp_server(
            tmp_path, "--allow-agent-confirm", env=env, handlers=("handlers.payments",)
        ) as client:
            paused = await client.call_tool(
                "payment_processing", {**refund, "payment_intent": state["pi"]}
            )
            run = paused.structured_content
            assert run["status"] == "paused" and run["pending"]["token"].startswith("sopc_")
            done = await client.call_tool(
                "confirm_run", {"run_id": run["run_id"], "token": run["pending"]["token"]}
            )
            assert not done.is_error, _text(done)
            assert done.structured_content["status"] == "succeeded"
            inspected = await client.call_tool("inspect_run", {"run_id": run["run_id"]})
            assert inspected.structured_content["run"]["status"] == "succeeded"

    run_async(human)
    run_async(agent)
    refunds = stripe.v1.refunds.list({"payment_intent": state["pi"]}).data
    assert [(r.amount, r.status) for r in refunds] == [(15000, "succeeded")]
    log = (tmp_path / "server.log").read_text(encoding="utf-8")
    for card_number in ("4242424242424242", "4242 4242 4242 4242", "4242-4242"):
        assert card_number not in log  # no card number reached the server's log


def test_malformed_wire_input_does_not_stop_the_server(project: Path) -> None:
    """Raw JSON-RPC over the pipe: garbage and ill-typed params, then a good call, then EOF."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "mcp",
            "--handlers",
            "demo_handlers",
            "--journal",
            "j.db",
        ],
        cwd=project,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None

    def send(message: str | dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write((message if isinstance(message, str) else json.dumps(message)) + "\n")
        proc.stdin.flush()

    def receive() -> dict[str, Any]:
        assert proc.stdout is not None
        reply: dict[str, Any] = json.loads(proc.stdout.readline())
        return reply

    try:
        send(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            }
        )
        assert receive()["result"]["serverInfo"]["name"] == "sop-engine"
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send("this is not json")
        send("\x00\xff{")
        call = {"jsonrpc": "2.0", "method": "tools/call"}
        send({**call, "id": 2, "params": {"name": "refund_demo", "arguments": [1, 2]}})
        assert receive()["error"]["code"] == -32602
        send({**call, "id": 3, "params": {"name": "refund_demo", "arguments": {"amount": 5}}})
        reply = receive()
        assert reply["id"] == 3 and reply["result"]["structuredContent"]["status"] == "succeeded"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


# --------------------------------------------------------------------------- in process


def test_confirm_policy_from_flag_and_environment() -> None:
    from engine.agents.mcp_server import confirm_policy
    from engine.errors import UsageError

    assert confirm_policy(False, {}) == "human"
    assert confirm_policy(True, {}) == "agent"
    assert confirm_policy(False, {"SOP_MCP_CONFIRM": " Agent "}) == "agent"
    assert confirm_policy(True, {"SOP_MCP_CONFIRM": "human"}) == "agent"  # the flag is explicit
    with pytest.raises(UsageError, match="SOP_MCP_CONFIRM='yes'"):
        confirm_policy(False, {"SOP_MCP_CONFIRM": "yes"})


def test_unexpected_exceptions_become_tool_errors(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug below the service (here: a registry that raises) is reported, never raised."""
    import engine
    from engine.agents.mcp_server import SopService

    class Exploding(engine.Registry):
        def match(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    monkeypatch.chdir(project)
    monkeypatch.setenv("SOP_JOURNAL", str(project / "j.db"))
    lines: list[str] = []
    service = SopService(registry=Exploding(), log=lines.append)
    for name, arguments in (("plan_sop", {"name": "refund-demo"}), ("refund_demo", {"amount": 5})):
        outcome = service.call(name, arguments)
        assert outcome.is_error and "internal error: RuntimeError: boom" in outcome.text
    assert sum("internal error" in line for line in lines) == 2


def test_a_failed_run_is_a_tool_error_with_the_run_result(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import engine
    from engine.agents.mcp_server import SopService

    registry = engine.Registry()

    @registry.action("require confirmation for refunds > ${threshold:d}")
    def gate(ctx: Any, threshold: int) -> None:
        return None

    @registry.action("issue the refund")
    def issue(ctx: Any) -> None:
        raise engine.SopFailure("Refund failed", "the bank said no")

    monkeypatch.chdir(project)
    service = SopService(registry=registry, journal=str(project / "j.db"), log=lambda _: None)
    outcome = service.call("refund_demo", {"amount": 5})
    assert outcome.is_error
    assert outcome.structured["status"] == "failed" and outcome.structured["errors"]
    Draft202012Validator(load_schema("run-result.schema.json")).validate(outcome.structured)


def test_one_bad_file_does_not_hide_the_others(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.agents.mcp_server import SopService

    (project / "sops" / "junk.sop.md").write_bytes(b"\xff\xfe\x00 not text")
    (project / "sops" / "folder.sop.md").mkdir()
    (project / "sops" / "nested").mkdir()
    (project / "sops" / "nested" / "refund-demo.sop.md").write_text(
        "# Shadowed\n", encoding="utf-8"
    )
    monkeypatch.chdir(project)
    lines: list[str] = []
    service = SopService(log=lines.append)
    names = {tool.name for tool in service.tools()}
    assert "refund_demo" in names and "junk" not in names and "folder" not in names
    rows = {r["name"]: r for r in service.call("list_sops", {}).structured["sops"]}
    assert rows["refund-demo"]["path"] == str(
        project / "sops" / "refund-demo.sop.md"
    )  # shallowest wins
    assert rows["junk"]["serving"] == "none" and "binary" in rows["junk"]["lint_errors"][0]
    assert any("junk.sop.md" in line and "not served" in line for line in lines)


def test_commands_name_a_postgresql_journal_by_its_url_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.agents.mcp_server import SopService

    monkeypatch.chdir(tmp_path)
    url = "postgresql://sop:s3cret@db.internal:5432/journal"
    command = SopService(journal=url, log=lambda _: None).resume_command("r1", "T")
    assert (
        command
        == "sop resume r1 --confirm T --journal postgresql://sop:***@db.internal:5432/journal"
    )
    socket = "postgresql:///journal?host=/run/postgresql"
    assert SopService(journal=socket, log=lambda _: None).journal_path() == socket
    assert SopService(journal="j.db", log=lambda _: None).journal_path() == str(tmp_path / "j.db")
