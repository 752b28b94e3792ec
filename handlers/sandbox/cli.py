"""The foreground ``sop sandbox`` command: serve in this process, print how to use it."""

from __future__ import annotations

import asyncio
import sys

from engine.errors import SopError, UsageError
from handlers.sandbox.client import DEFAULT_API_KEY
from handlers.sandbox.server import HOST, Servers, describe_os_error, serve


def run_foreground(port: int) -> int:
    if not 0 <= port <= 65535:
        raise UsageError(f"--port: must be 0..65535 (got {port})")

    def ready(servers: Servers) -> None:
        print(f"Stripe sandbox listening on {servers.url} (localstripe at {servers.upstream_url})")
        print(f"export STRIPE_API_BASE={servers.url}")
        print(f"export STRIPE_API_KEY={DEFAULT_API_KEY}")
        print("Control API under /_sandbox/ (faults, requests, reset). Ctrl-C to stop.")
        sys.stdout.flush()

    try:
        asyncio.run(serve(port, ready))
    except OSError as exc:
        raise SopError(
            f"sandbox: cannot listen on {HOST}:{port}: {describe_os_error(exc)}"
        ) from None
    except KeyboardInterrupt:
        pass
    print("sandbox stopped")
    return 0
