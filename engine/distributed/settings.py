"""Where the broker is and how long a delivered task stays invisible to other workers."""

from __future__ import annotations

import os

from engine.execution.settings import seconds
from engine.storage.location import shown

DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
#: the queue a submitted run goes to unless ``--queue`` names another
DEFAULT_QUEUE = "sop"
#: the one task: "execute run RUN_ID"
TASK_NAME = "sop.execute_run"
#: Redis hides a delivered, unacknowledged task this long; then any worker may take it
#: again (a worker SIGKILLed mid-run: its run is re-delivered and resumed)
DEFAULT_VISIBILITY = 3600.0


def broker_url() -> str:
    """``SOP_BROKER``, else Redis on this machine."""
    return os.environ.get("SOP_BROKER") or DEFAULT_BROKER


def broker_configured() -> bool:
    """Whether ``SOP_BROKER`` is set (``sop runs`` shows the workers' health only then)."""
    return bool(os.environ.get("SOP_BROKER"))


def visibility_seconds() -> float:
    """``SOP_BROKER_VISIBILITY_SECONDS`` (default 3600): how soon a dead worker's task is
    re-delivered. A live worker's run past it is delivered again too; the lease makes
    that second delivery wait (``engine.distributed.execute``)."""
    return seconds("SOP_BROKER_VISIBILITY_SECONDS", DEFAULT_VISIBILITY)


def shown_broker(url: str) -> str:
    """The broker URL without its password, for messages."""
    return shown(url)
