"""``sop worker``: a Celery worker (broker ``SOP_BROKER``) that executes submitted runs.

It runs in this process (``app.Worker``), a thread per run (``--concurrency``): a
handler mostly waits on I/O, and a run's lease names this process, so a SIGKILL takes
all its runs down together and the next worker takes each over. Handler packs load as
for ``sop resume``: the ones the run journaled, ``--handlers`` and the project's. One
log line per run taken and per run stopped (``engine.distributed.execute``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from engine.errors import UsageError
from engine.storage.journal import Journal
from engine.storage.location import chosen, database_url


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
    worker_log = logging.getLogger("sop.worker")
    worker_log.addHandler(handler)
    worker_log.setLevel(logging.INFO)
    worker_log.propagate = False
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)


def cmd_worker(args: argparse.Namespace) -> int:
    from engine.distributed.app import make_app
    from engine.distributed.execute import CONFIG
    from engine.distributed.health import Heartbeat
    from engine.distributed.settings import (
        DEFAULT_QUEUE,
        broker_url,
        shown_broker,
    )
    from engine.storage.lease import host

    if args.concurrency < 1:
        raise UsageError(f"--concurrency {args.concurrency}: expected 1 or more")
    location = str(chosen(args.journal))
    url = database_url(location)
    if url is None:
        raise UsageError(
            f"sop worker needs a journal the workers share: {location} is a SQLite file;"
            " set SOP_JOURNAL=postgresql://... (or --journal)"
        )
    with Journal(location) as journal:  # reachable, and migrated (the workers table)
        journal.head()
    queues = args.queue or [DEFAULT_QUEUE]
    name = args.name or f"sop@{host()}-{os.getpid()}"
    _logging()
    CONFIG.journal, CONFIG.handlers = location, list(args.handlers)
    CONFIG.heartbeat = beat = Heartbeat(url, name, queues, args.concurrency)
    app = make_app()
    log = logging.getLogger("sop.worker")
    log.info(
        "%s: %d thread(s), queue(s) %s, broker %s, journal %s",
        name,
        args.concurrency,
        ", ".join(queues),
        shown_broker(broker_url()),
        journal.location,
    )
    worker = app.Worker(
        hostname=name,
        pool="threads",
        concurrency=args.concurrency,
        queues=queues,
        loglevel="WARNING",
        quiet=True,
        without_gossip=True,
        without_mingle=True,
        optimization="fair",
    )
    try:
        worker.start()
    finally:
        beat.close()
    return int(worker.exitcode or 0)
