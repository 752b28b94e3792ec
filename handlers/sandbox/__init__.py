"""Local Stripe sandbox: localstripe on 127.0.0.1 behind an idempotency + fault layer.

``Sandbox`` drives it from Python (tests); ``sop sandbox [--port N]`` runs it in
the foreground for the demo (``handlers.sandbox.command``, an entry point of
``sop_engine.commands``). This package never imports the payments pack.
"""

from __future__ import annotations

from handlers.sandbox.client import DEFAULT_API_KEY, Sandbox, SandboxError

__all__ = ["DEFAULT_API_KEY", "Sandbox", "SandboxError"]
