"""``sop mcp`` and ``sop tools``: the SOPs as tools for agents."""

from __future__ import annotations

import argparse
import json
import sys

from engine.errors import UsageError


def cmd_mcp(args: argparse.Namespace) -> int:
    """Serve every SOP as an MCP tool (and prompt) over stdio until stdin closes."""
    try:
        import mcp.server.lowlevel  # noqa: F401 - fail early with an install hint
    except ImportError as exc:
        raise UsageError(
            "sop mcp needs the MCP SDK (pip install 'sop-engine[mcp]'): " + str(exc)
        ) from exc
    from engine.agents.mcp_server import CallLimits, SopService, confirm_policy, serve, stderr_log
    from engine.binding.packs import load_handlers

    policy = confirm_policy(bool(getattr(args, "allow_agent_confirm", False)))
    limits = CallLimits.from_env()
    registry = load_handlers(args.handlers)
    service = SopService(
        registry=registry,
        journal=args.journal,
        policy=policy,
        handlers=tuple(args.handlers),
        limits=limits,
        performer=args.performer,
    )
    tools = service.tools()  # load and lint every SOP now, so problems show at start
    stderr_log(
        f"serving {len(tools)} tools over stdio (confirmation policy: {policy}; "
        f"{'agents may confirm' if policy == 'agent' else 'a person confirms paused runs'}; "
        f"{limits.seconds:g} s and {limits.argument_bytes:,} bytes of arguments per call)"
    )
    serve(service)
    return 0


def cmd_tools(args: argparse.Namespace) -> int:
    """Print the tool definitions ``sop mcp`` serves, in the shape another framework takes."""
    from engine.agents.mcp_server import SopService, stderr_logger
    from engine.agents.tools import export

    service = SopService(log=stderr_logger("sop tools"))
    definitions = export(service.tools(), args.format)
    json.dump(definitions, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
