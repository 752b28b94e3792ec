"""Run localstripe and the layer in one event loop, both on 127.0.0.1 only.

localstripe's own CLI binds ``::`` (every interface) and pickles its store to
/tmp/localstripe.pickle on every write (and reloads it at start). We never use
that CLI: we import its aiohttp app, disable the pickling, and bind loopback.

``python -m handlers.sandbox.server --port N --watch-stdin`` is how
``Sandbox.start()`` runs it: one JSON line on stdout when ready; it stops on
SIGTERM/SIGINT or when its stdin closes (the parent died), so it never outlives
the test process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

HOST = "127.0.0.1"


def _localstripe_app() -> web.Application:
    """localstripe's app with its disk persistence disabled and its store empty."""
    import localstripe.resources as resources  # type: ignore[import-untyped]
    from localstripe.server import app  # type: ignore[import-untyped]

    def no_disk(self: object) -> None:
        return None

    resources.Store.dump_to_disk = no_disk
    resources.Store.try_load_from_disk = no_disk
    resources.store.clear()
    return app  # type: ignore[no-any-return]


def _forget_webhooks() -> None:
    from localstripe import webhooks

    webhooks._webhooks.clear()


@dataclass
class Servers:
    """The two running sites; ``url`` is what clients use."""

    url: str
    upstream_url: str
    runners: tuple[web.AppRunner, ...]

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def start_servers(port: int = 0) -> Servers:
    """Bind localstripe (free port) and the layer (``port``, 0 = free) on 127.0.0.1."""
    from handlers.sandbox.proxy import build_app

    upstream = web.AppRunner(_localstripe_app(), access_log=None, shutdown_timeout=1.0)
    await upstream.setup()
    await web.TCPSite(upstream, HOST, 0).start()
    upstream_url = f"http://{HOST}:{_port_of(upstream)}"
    layer = web.AppRunner(
        build_app(upstream_url, on_reset=_forget_webhooks), access_log=None, shutdown_timeout=1.0
    )
    await layer.setup()
    try:
        await web.TCPSite(layer, HOST, port).start()
    except OSError:
        await upstream.cleanup()
        await layer.cleanup()
        raise
    return Servers(f"http://{HOST}:{_port_of(layer)}", upstream_url, (layer, upstream))


def describe_os_error(exc: OSError) -> str:
    """'address already in use' rather than aiohttp's long bind message."""
    return os.strerror(exc.errno).lower() if exc.errno else str(exc)


def _port_of(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])


async def serve(
    port: int, on_ready: Callable[[Servers], None], stop: asyncio.Event | None = None
) -> None:
    """Serve until SIGTERM/SIGINT (or ``stop``); then close both sites cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    servers = await start_servers(port)
    try:
        on_ready(servers)
        await stop.wait()
    finally:
        await servers.close()
        await _cancel_leftovers()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def _cancel_leftovers() -> None:
    """localstripe schedules webhook tasks that sleep; end them quietly."""
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _watch_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Stop when the parent closes our stdin or dies (EOF)."""

    def wait() -> None:
        # os.read, not sys.stdin: a daemon thread blocked inside a buffered reader
        # holds its lock and makes interpreter shutdown abort.
        with contextlib.suppress(OSError):
            while os.read(0, 4096):
                pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=wait, name="sandbox-stdin-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handlers.sandbox.server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--watch-stdin", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    async def run() -> None:
        stop = asyncio.Event()
        if args.watch_stdin:
            _watch_stdin(asyncio.get_running_loop(), stop)

        def ready(servers: Servers) -> None:
            line = {"url": servers.url, "upstream_url": servers.upstream_url, "pid": os.getpid()}
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()

        await serve(args.port, ready, stop)

    try:
        asyncio.run(run())
    except OSError as exc:
        sys.stderr.write(
            f"sandbox: cannot listen on {HOST}:{args.port}: {describe_os_error(exc)}\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
