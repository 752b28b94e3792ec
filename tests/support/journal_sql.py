"""Edit a journal behind its back (tampering, a lease written by another process), in a
SQLite file or a PostgreSQL database alike, with ``?`` placeholders."""

from __future__ import annotations

import sqlite3
from typing import Any

import psycopg

from engine.storage.location import database_url


def execute(location: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on the journal's database directly; its rows (if any)."""
    url = database_url(location)
    if url is None:
        with sqlite3.connect(location) as db:
            return db.execute(sql, params).fetchall()
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []
