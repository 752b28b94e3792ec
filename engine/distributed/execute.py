"""What a worker does with "execute run RUN_ID": resume the run from the shared journal.

A submitted run is journaled (parameters, plan, ``run_submitted``) before its id is
enqueued, so the worker acts on the journal's parameters only and goes through the one
resume path: take the lease, replay what is done, walk the rest under the same
idempotency keys. Which is also what makes a re-delivered task safe:

- a run already finished, paused for a person or waiting for a performer: nothing to do
  (the task is acknowledged; confirming a submitted run enqueues its continuation);
- a run a live process holds (its lease): raise ``LookAgain``; the task is retried
  after a lease's lifetime, so if that holder dies the run is still taken over;
- a run whose holder died (a SIGKILLed worker, re-delivered): resume takes the lease
  over and re-runs the interrupted action with its idempotency key.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from engine.distributed.health import Heartbeat
from engine.errors import SopError
from engine.execution.redact import redact_text
from engine.execution.result import FINAL, RunStatus
from engine.storage.journals import JOURNALS
from engine.storage.lease import LeaseHeld, ttl_seconds
from engine.storage.location import default_path
from engine.storage.run_status import current_status

LOG = logging.getLogger("sop.worker")

_FINAL = frozenset(status.value for status in FINAL)
#: a person's or performer's move comes first; an unknown outcome is reconciled by a person
_NOT_MINE = frozenset({RunStatus.PAUSED.value, RunStatus.WAITING.value, RunStatus.UNKNOWN.value})


@dataclass
class WorkerConfig:
    """Set by ``sop worker``: the journal (default: ``SOP_JOURNAL``) and extra handler modules."""

    journal: str | None = None
    handlers: list[str] = field(default_factory=list)
    #: counts runs in progress and done for the worker's heartbeat row
    heartbeat: Heartbeat | None = None


CONFIG = WorkerConfig()


class LookAgain(Exception):
    """A live process holds the run, or the journal could not be reached: the task is
    retried in ``wait`` seconds rather than dropped."""

    def __init__(self, why: str, wait: float) -> None:
        super().__init__(why)
        self.wait = wait


def _location() -> str | Path:
    return CONFIG.journal or default_path()


def execute(run_id: str) -> str:
    """Resume ``run_id`` to its next stop; the status it stopped at (or why nothing ran)."""
    from engine.binding.packs import load_handlers
    from engine.execution.runner import resume

    with JOURNALS.using(_location()) as journal:
        row = journal.run(run_id)
        if row is None:
            LOG.warning("run %s: not in journal %s; nothing to do", run_id, journal.location)
            return "not found"
        status = current_status(journal, row)
        if status in _FINAL or status in _NOT_MINE:
            LOG.info("run %s: already %s; nothing to do", run_id, status)
            return status
        started = time.monotonic()
        beat = CONFIG.heartbeat
        if beat is not None:
            beat.taken()
        try:
            begun = journal.verified_run(run_id)
            registry = load_handlers([*begun.handlers, *CONFIG.handlers], sops=(begun.sop,))
            LOG.info("run %s: taken (%s, was %s)", run_id, begun.sop, status)
            result = resume(run_id, registry=registry, journal=journal)
        except LeaseHeld as held:
            LOG.info("run %s: held by %s; looking again later", run_id, held.lease.owner())
            raise LookAgain(str(held), ttl_seconds()) from held
        except SopError as exc:  # the run cannot go on (changed SOP text, tampered journal)
            LOG.error("run %s: not resumed: %s", run_id, redact_text(str(exc)))
            return "refused"
        except Exception as exc:  # the journal or the network: never drop the run
            why = f"{type(exc).__name__}: {redact_text(str(exc))}"
            LOG.error("run %s: stopped by %s; looking again later", run_id, why)
            raise LookAgain(why, ttl_seconds()) from exc
        finally:
            if beat is not None:
                beat.finished()
        took = time.monotonic() - started
        LOG.info("run %s: %s in %.2fs", run_id, result.status.value, took)
        if result.pending and result.pending.get("token"):
            # as `sop mcp` does: the token goes to the operator's log, never to a caller
            LOG.info(
                "run %s: paused: %s; confirm with: sop resume %s --confirm %s (or approve it in"
                " sop ui)",
                run_id,
                redact_text(str(result.pending.get("message") or "confirmation required")),
                run_id,
                result.pending["token"],
            )
        return result.status.value
