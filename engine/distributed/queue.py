"""Enqueue "execute run RUN_ID" on the broker.

The message carries the run id only: the worker reads everything else (parameters,
SOP, handlers) from the journal, so it never acts on values that differ from it.
"""

from __future__ import annotations

from engine.distributed.settings import TASK_NAME, broker_url, shown_broker
from engine.errors import SopError


def enqueue(run_id: str, queue: str) -> None:
    """Publish the run's task; SopError (one line) when the broker cannot be reached."""
    from engine.distributed.app import make_app

    app = make_app()
    try:
        app.send_task(TASK_NAME, args=[run_id], queue=queue, retry=False)
    except Exception as exc:  # kombu's OperationalError, redis' ConnectionError, ...
        raise SopError(
            f"broker {shown_broker(broker_url())} unreachable ({type(exc).__name__}): run"
            f" {run_id} is journaled but not enqueued; enqueue it again with: sop resume"
            f" {run_id} --submit, or run it here with: sop resume {run_id}"
        ) from exc
    finally:
        app.close()
