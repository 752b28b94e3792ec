"""Enqueue "execute run RUN_ID" on the broker.

The message carries the run id only: the worker reads everything else (parameters,
SOP, handlers) from the journal, so it never acts on values that differ from it.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from engine.distributed.settings import TASK_NAME, broker_url, shown_broker
from engine.errors import SopError

if TYPE_CHECKING:
    from celery import Celery


_APPS: dict[str, Celery] = {}
_LOCK = threading.Lock()


def _producer(broker: str) -> Celery:
    """One Celery app per broker per process: its connection pool is reused by every submit."""
    with _LOCK:
        app = _APPS.get(broker)
        if app is None:
            from engine.distributed.app import make_app

            app = _APPS[broker] = make_app(broker)
        return app


def enqueue(run_id: str, queue: str) -> None:
    """Publish the run's task; SopError (one line) when the broker cannot be reached."""
    broker = broker_url()
    try:
        _producer(broker).send_task(TASK_NAME, args=[run_id], queue=queue, retry=False)
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, ...
        raise SopError(
            f"broker {shown_broker(broker)} unreachable ({type(exc).__name__}): run"
            f" {run_id} is journaled (queued) but not enqueued; run it here with:"
            f" sop resume {run_id}"
        ) from exc
