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
from engine.storage.location import chosen, database_url, shown

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
    where = chosen(args.journal)
    url = database_url(where)
    journal = where if url is not None else Path(where).resolve()
    app = create_app(Settings(journal=journal, secret=secret, handlers=args.handlers))
    if args.host not in LOOPBACK:
        print(
            f"sop ui: warning: binding {args.host} exposes the page beyond this machine",
            file=sys.stderr,
        )
    host = f"[{args.host}]" if ":" in args.host else args.host
    named = shown(url) if url is not None else journal
    print(f"sop ui: http://{host}:{args.port}/  (journal {named})")
    print(f"sop ui: login secret: {secret}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return EXIT_OK
