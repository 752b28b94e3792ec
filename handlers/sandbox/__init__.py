"""Local Stripe sandbox: localstripe on 127.0.0.1 behind an idempotency + fault layer.

``Sandbox`` drives it from Python (tests); ``sop sandbox [--port N]`` runs it in
the foreground for the demo.
"""

from __future__ import annotations

import argparse

from handlers.sandbox.client import DEFAULT_API_KEY, Sandbox, SandboxError

__all__ = ["DEFAULT_API_KEY", "Sandbox", "SandboxError", "cmd_sandbox"]


def cmd_sandbox(args: argparse.Namespace) -> int:
    """``sop sandbox [--port N]``: serve until Ctrl-C / SIGTERM."""
    from handlers.sandbox.cli import run_foreground

    return run_foreground(int(getattr(args, "port", 8420)))
