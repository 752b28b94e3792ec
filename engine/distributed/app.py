"""The Celery application: Redis broker, late acknowledgement, one task per run.

``task_acks_late`` + ``task_reject_on_worker_lost``: a task is acknowledged when its
run has stopped (finished, paused, waiting), not when it is received, so a worker that
dies mid-run leaves it unacknowledged and Redis re-delivers it after the visibility
timeout (``engine.distributed.settings``); ``worker_prefetch_multiplier=1``: a worker
holds no more tasks than it executes, so the others get the rest. No result backend:
the journal is where a run's result lives.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from engine.distributed.settings import TASK_NAME, broker_url, visibility_seconds


def make_app(broker: str | None = None) -> Celery:
    """A Celery app for ``broker`` (default ``SOP_BROKER``), the run task registered."""
    visibility = visibility_seconds()
    app = Celery("sop", broker=broker or broker_url(), set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_transport_options={
            "visibility_timeout": visibility,
            # look for unacknowledged tasks past their visibility every few seconds
            "unacked_restore_interval": max(1.0, min(10.0, visibility / 3)),
            "unacked_restore_throttle": 1,
        },
    )

    @app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator]
    def execute_run(task: Any, run_id: str) -> str:
        from engine.distributed.execute import LookAgain, execute

        try:
            return execute(run_id)
        except LookAgain as again:  # held by a live process: if it dies, take the run over
            raise task.retry(countdown=again.wait, max_retries=None) from again

    return app
