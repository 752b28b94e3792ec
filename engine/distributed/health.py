"""Workers' health and the queue's depth, for ``sop runs`` and ``sop ui``.

Each ``sop worker`` upserts a row of the journal's ``workers`` table (PostgreSQL
migration 2) every ``SOP_WORKER_HEARTBEAT_SECONDS`` (default 5): name, host, pid,
queues, concurrency, runs in progress and done, last seen. The journal, not the broker,
holds it, so the workers' last heartbeats still show when Redis is down; a worker
unseen for three beats is shown as gone. The queue's depth is asked of Redis (one LLEN,
1 s timeout). Nothing here is asked, and no line shown, unless ``SOP_BROKER`` is set.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.distributed.settings import DEFAULT_QUEUE, broker_configured, shown_broker
from engine.execution.redact import redact_text
from engine.execution.settings import seconds
from engine.storage.lease import host
from engine.storage.location import database_url

DEFAULT_BEAT = 5.0


def beat_seconds() -> float:
    return seconds("SOP_WORKER_HEARTBEAT_SECONDS", DEFAULT_BEAT)


@dataclass(frozen=True)
class WorkerRow:
    name: str
    host: str
    pid: int
    queues: list[str]
    concurrency: int
    started: float
    seen: float
    busy: int
    done: int
    stopped: float | None

    def alive(self, now: float, beat: float) -> bool:
        return self.stopped is None and now - self.seen <= 3 * beat

    def to_dict(self, now: float, beat: float) -> dict[str, Any]:
        return {
            "name": self.name,
            "host": self.host,
            "pid": self.pid,
            "queues": self.queues,
            "concurrency": self.concurrency,
            "busy": self.busy,
            "done": self.done,
            "seen_seconds_ago": round(now - self.seen, 1),
            "alive": self.alive(now, beat),
        }


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


class Heartbeat:
    """A worker's row, written now and every beat from a daemon thread until ``close``."""

    def __init__(self, url: str, name: str, queues: list[str], concurrency: int) -> None:
        self._url, self.name = url, name
        self._queues, self._concurrency = queues, concurrency
        self._started = time.time()
        self._lock = threading.Lock()
        self.busy = 0
        self.done = 0
        self._stop = threading.Event()
        self._conn: Any = None
        self.beat()
        self._thread = threading.Thread(target=self._work, name="sop-worker-heartbeat", daemon=True)
        self._thread.start()

    def taken(self) -> None:
        with self._lock:
            self.busy += 1

    def finished(self) -> None:
        with self._lock:
            self.busy -= 1
            self.done += 1

    def beat(self, stopped: float | None = None) -> None:
        if self._conn is None:
            self._conn = _connect(self._url)
        now = time.time()
        self._conn.execute(
            "INSERT INTO workers(name, host, pid, queues, concurrency, started, seen, busy,"
            " done, stopped) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (name) DO UPDATE"
            " SET host=excluded.host, pid=excluded.pid, queues=excluded.queues,"
            " concurrency=excluded.concurrency, started=excluded.started, seen=excluded.seen,"
            " busy=excluded.busy, done=excluded.done, stopped=excluded.stopped",
            (
                self.name,
                host(),
                os.getpid(),
                json.dumps(self._queues),
                self._concurrency,
                self._started,
                now,
                self.busy,
                self.done,
                stopped,
            ),
        )

    def _work(self) -> None:
        while not self._stop.wait(beat_seconds()):
            try:
                self.beat()
            except Exception:  # the database is away: reconnect at the next beat
                self._conn = None

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            self.beat(stopped=time.time())
        if self._conn is not None:
            self._conn.close()


def workers(location: str | Path) -> list[WorkerRow]:
    """The workers that ever beat into this journal, most recently seen first."""
    url = database_url(location)
    if url is None:
        return []
    with _connect(url) as conn:
        rows = conn.execute(
            "SELECT name, host, pid, queues, concurrency, started, seen, busy, done, stopped"
            " FROM workers ORDER BY seen DESC"
        ).fetchall()
    return [WorkerRow(r[0], r[1], int(r[2]), list(json.loads(r[3])), *(r[4:])) for r in rows]


def queue_depth(queue: str, *, timeout: float = 1.0) -> int:
    """How many tasks wait in ``queue`` (Redis: the list's length); raises when unreachable."""
    import redis

    from engine.distributed.settings import broker_url

    client = redis.Redis.from_url(
        broker_url(), socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        return int(client.llen(queue))  # kombu's Redis transport: a list named after the queue
    finally:
        client.close()


@dataclass(frozen=True)
class Health:
    """What ``sop runs`` / ``sop ui`` show about the queue and the workers."""

    queue: str
    broker: str
    depth: int | None
    broker_error: str | None
    workers: list[WorkerRow]
    workers_error: str | None
    now: float
    beat: float

    def live(self) -> list[WorkerRow]:
        return [w for w in self.workers if w.alive(self.now, self.beat)]

    def lines(self) -> list[str]:
        if self.broker_error is not None:
            depth = f"broker {self.broker} unreachable ({self.broker_error})"
        else:
            depth = f"{self.depth} waiting"
        lines = [f"queue '{self.queue}': {depth}"]
        if self.workers_error is not None:
            lines.append(f"workers: unknown ({self.workers_error})")
            return lines
        live = self.live()
        busy = sum(w.busy for w in live)
        slots = sum(w.concurrency for w in live)
        lines.append(f"workers: {len(live)} live, {busy}/{slots} busy")
        for w in self.workers[:10]:
            ago = self.now - w.seen
            state = "live" if w.alive(self.now, self.beat) else "gone"
            if w.stopped is not None:
                state = "stopped"
            lines.append(
                f"  {w.name:<28} {state:<7} last heartbeat {ago:.0f}s ago, busy"
                f" {w.busy}/{w.concurrency}, {w.done} done ({', '.join(w.queues)})"
            )
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "depth": self.depth,
            "broker_error": self.broker_error,
            "workers": [w.to_dict(self.now, self.beat) for w in self.workers],
            "workers_error": self.workers_error,
        }


def health(location: str | Path, queue: str = DEFAULT_QUEUE) -> Health | None:
    """The queue's depth and the workers' heartbeats; None when no broker is configured."""
    if not broker_configured():
        return None
    from engine.distributed.settings import broker_url

    depth: int | None = None
    broker_error: str | None = None
    try:
        depth = queue_depth(queue)
    except Exception as exc:  # redis missing or down
        broker_error = type(exc).__name__
    rows: list[WorkerRow] = []
    workers_error: str | None = None
    try:
        rows = workers(location)
    except Exception as exc:  # the journal's database is down, or predates migration 2
        workers_error = f"{type(exc).__name__}: {redact_text(str(exc)).splitlines()[0]}"
    return Health(
        queue=queue,
        broker=shown_broker(broker_url()),
        depth=depth,
        broker_error=broker_error,
        workers=rows,
        workers_error=workers_error,
        now=time.time(),
        beat=beat_seconds(),
    )
