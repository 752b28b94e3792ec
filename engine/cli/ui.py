"""``sop ui [--port N] [--host H]``: the operators' web page (engine.ui), in the foreground.

Prints the URL and the login secret (drawn afresh each start unless ``SOP_UI_SECRET``
gives one), then serves until interrupted. Binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from engine.cli.common import EXIT_OK
from engine.errors import UsageError
from engine.storage.journal import default_path

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def cmd_ui(args: argparse.Namespace) -> int:
    import uvicorn

    from engine.ui.app import Settings, create_app
    from engine.ui.auth import new_secret

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: expected 1..65535")
    secret = os.environ.get("SOP_UI_SECRET") or new_secret()
    if len(secret) < 12:
        raise UsageError("SOP_UI_SECRET: the login secret must be at least 12 characters")
    journal = os.path.abspath(args.journal) if args.journal else str(default_path())
    app = create_app(Settings(journal=Path(journal), secret=secret, handlers=args.handlers))
    if args.host not in LOOPBACK:
        print(
            f"sop ui: warning: binding {args.host} exposes the page beyond this machine",
            file=sys.stderr,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"sop ui: http://{host}:{args.port}/  (journal {journal})")
    print(f"sop ui: login secret: {secret}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
