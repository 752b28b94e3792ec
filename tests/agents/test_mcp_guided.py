"""A guided run over MCP: the SDK's own client against real `sop mcp --performer agent`
subprocesses, on an upstream Agent SOP (tests/fixtures/agent-sop/codebase-summary)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.mcp_client import mcp_server, run_async
from tests.support.mcp_client import text_of as _text

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "agent-sop" / "codebase-summary.sop.md"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "sops").mkdir()
    shutil.copy(FIXTURE, tmp_path / "sops" / "codebase-summary.sop.md")
    return tmp_path


def _done(tasks: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"id": t["id"], "outcome": "done", "note": f"did L{t['line']}"} for t in tasks]


def test_an_agent_performs_an_agent_sop_across_a_server_restart(project: Path) -> None:
    path = "sops/codebase-summary.sop.md"  # as the catalog found it, from the project
    state: dict[str, Any] = {}

    async def first() -> None:
        async with mcp_server(project, "--performer", "agent", handlers=()) as client:
            started = await client.call_tool("codebase_summary", {})
            result = started.structured_content
            assert result["status"] == "waiting" and not started.is_error
            tasks = result["tasks"]
            # first the SOP-wide lines (parameter acquisition, troubleshooting: they hold for
            # the whole run), acknowledged before step 1
            assert tasks and all(t["step"] is None for t in tasks), tasks
            wide = await client.call_tool(
                "report_tasks", {"run_id": result["run_id"], "reports": _done(tasks)}
            )
            result = wide.structured_content
            tasks = result["tasks"]
            assert [t["line"] for t in tasks] == [36, 37, 38, 39]
            assert tasks[0]["file"].endswith(path) and tasks[0]["step_title"].startswith("Setup")
            assert "report_tasks" in _text(started)
            rid = result["run_id"]

            skip = {"id": tasks[0]["id"], "outcome": "skipped", "note": "later"}
            refused = await client.call_tool("report_tasks", {"run_id": rid, "reports": [skip]})
            assert refused.is_error and f"{path}:36: MUST" in _text(refused)

            one = await client.call_tool(
                "report_tasks", {"run_id": rid, "reports": _done(tasks[:1])}
            )
            still = one.structured_content
            assert still["status"] == "waiting"
            assert [t["line"] for t in still["tasks"]] == [37, 38, 39]
            assert "Open: " in _text(one) and "step1:action:L37" in _text(one)
            state["rid"] = rid

    async def second() -> None:  # a new server process: the journal carries the run
        async with mcp_server(project, "--performer", "agent", handlers=()) as client:
            rid = state["rid"]
            seen = await client.call_tool("inspect_run", {"run_id": rid})
            assert seen.structured_content["run"]["status"] == "waiting"
            assert "waiting for the agent's reports on 3 task(s)" in _text(seen)
            tasks = seen.structured_content["result"]["tasks"]
            steps = set()
            for _ in range(20):
                answer = await client.call_tool(
                    "report_tasks", {"run_id": rid, "reports": _done(tasks)}
                )
                result = answer.structured_content
                if result["status"] != "waiting":
                    break
                tasks = result["tasks"]
                steps.add(tasks[0]["step"])
            assert result["status"] == "succeeded", _text(answer)
            assert steps == {2, 3, 4, 5, 6}
            lines = {a["line"]: a for a in result["actions"]}
            assert (
                lines[36]["status"] == "passed"
                and lines[36]["reason"] == "done by agent (mcp): did L36"
            )

            prompt = await client.get_prompt("codebase-summary", {"user_input": "document ./src"})
            text = prompt.messages[0].content.text
            assert text.startswith("Run this SOP: Codebase Summary.")
            assert "User input: document ./src" in text and "`codebase_summary`" in text
            assert text.endswith(FIXTURE.read_text(encoding="utf-8"))
            listed = {p.name: p for p in (await client.list_prompts()).prompts}
            assert [a.name for a in listed["codebase-summary"].arguments] == ["user_input"]

    run_async(first)
    run_async(second)


def test_without_a_performer_an_agent_sop_is_still_refused(project: Path) -> None:
    async def body() -> None:
        async with mcp_server(project, handlers=()) as client:
            refused = await client.call_tool("codebase_summary", {})
            assert refused.is_error and "refusing to run, unbound required lines" in _text(refused)

    run_async(body)
