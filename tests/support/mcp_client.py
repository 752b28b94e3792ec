"""A real ``sop mcp`` subprocess driven by the MCP SDK's own stdio client."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This environment without SOP_* / STRIPE_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOP_", "STRIPE_"))}
    return {**env, **(extra or {})}


@asynccontextmanager
async def mcp_server(
    cwd: Path,
    *args: str,
    env: dict[str, str] | None = None,
    handlers: tuple[str, ...] = ("demo_handlers",),
) -> AsyncIterator[Client]:
    """A ``sop mcp`` subprocess in ``cwd``, its stderr in ``cwd/server.log``."""
    argv = ["-m", "engine", "mcp", "--journal", str(cwd / "journal.db")]
    for module in handlers:
        argv += ["--handlers", module]
    params = StdioServerParameters(
        command=sys.executable, args=[*argv, *args], cwd=str(cwd), env=server_env(env)
    )
    with (cwd / "server.log").open("a", encoding="utf-8") as errlog:
        async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as client:
            yield client


def run_async(body: Callable[[], Awaitable[None]]) -> None:
    anyio.run(body)


def text_of(result: Any) -> str:
    """A tool result's text blocks, joined."""
    return "\n".join(block.text for block in result.content)
