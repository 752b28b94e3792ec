"""The DBOS Transact side of ``bench/bench_dbos.py``; runs in the bench virtualenv.

``dbos`` is never a project dependency: ``make bench`` installs it into ``.venv-bench`` and
the bench starts this script with that venv's python. One process per durability setting,
launched once (DBOS's start-up is not what we measure), then driven over stdin so the bench
can alternate it with the engine in the same run: each input line ``N`` runs N workflows
of ``--steps`` no-op steps and answers one JSON line with each workflow's wall time.

Durability: ``--sqlite defaults`` leaves SQLite as DBOS configures it (rollback journal,
``synchronous=FULL``); ``--sqlite wal-normal`` sets WAL and ``synchronous=NORMAL`` on every
connection, the engine's own journal setting. The pragmas in effect are read back and
reported, so the bench can check it compared like with like.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from importlib.metadata import version
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig

#: pragmas read back from each new system-database connection (the last one wins)
SEEN: dict[str, Any] = {}


def _pragmas_on_connect(wal_normal: bool) -> None:
    """Every SQLAlchemy engine DBOS creates gets these pragmas on each new connection."""

    @sa.event.listens_for(sa.Engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        if not isinstance(dbapi_conn, sqlite3.Connection):
            return
        if wal_normal:
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA synchronous=NORMAL")
        SEEN["journal_mode"] = dbapi_conn.execute("PRAGMA journal_mode").fetchone()[0]
        level = dbapi_conn.execute("PRAGMA synchronous").fetchone()[0]
        SEEN["synchronous"] = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(level, level)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True, help="SQLite system database file")
    parser.add_argument("--sqlite", choices=("defaults", "wal-normal"), required=True)
    parser.add_argument("--steps", type=int, default=33)
    args = parser.parse_args()

    # answers go to the real stdout; anything DBOS prints goes to stderr
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    _pragmas_on_connect(args.sqlite == "wal-normal")
    config: DBOSConfig = {
        "name": "sop-bench",
        "system_database_url": f"sqlite:///{args.db}",
        "log_level": "WARNING",
    }
    DBOS(config=config)

    @DBOS.step()
    def noop(i: int) -> int:
        return i

    @DBOS.workflow()
    def no_op_steps(steps: int) -> int:
        total = 0
        for i in range(steps):
            total += noop(i)
        return total

    DBOS.launch()
    expected = sum(range(args.steps))
    answers.write(json.dumps({"ready": True, "dbos": version("dbos"), **SEEN}) + "\n")
    answers.flush()
    for line in sys.stdin:
        count = int(line)
        seconds: list[float] = []
        for _ in range(count):
            started = time.perf_counter()
            result = no_op_steps(args.steps)
            seconds.append(time.perf_counter() - started)
            assert result == expected, result
        answers.write(json.dumps({"seconds": seconds, **SEEN}) + "\n")
        answers.flush()
    DBOS.destroy()
    return 0


if __name__ == "__main__":
    sys.exit(main())
