"""``sop sandbox [--port N]``, offered to ``sop`` by the entry point ``sop_engine.commands``.

``engine`` never imports ``handlers``: the command line finds this object through the
installed distribution's metadata (``engine.cli.plugins``). aiohttp and localstripe
are imported only when the command runs.
"""

from __future__ import annotations

import argparse


class SandboxCommand:
    """The foreground Stripe sandbox for the demo and manual testing."""

    help = "run the local Stripe sandbox"

    def configure(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--port", type=int, default=8420, help="port on 127.0.0.1 (default 8420)"
        )

    def run(self, args: argparse.Namespace) -> int:
        # lazy: the server needs aiohttp and localstripe (the 'sandbox' extra)
        from handlers.sandbox.cli import run_foreground

        return run_foreground(int(getattr(args, "port", 8420)))


COMMAND = SandboxCommand()
