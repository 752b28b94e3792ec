"""RunContext: what a handler sees of the run it is part of.

One context per action call; ``params``, ``state``, ``output`` and ``services`` are
shared by every action of the run. Everything a handler leaves behind through the
context (log lines, records) is redacted before it is stored.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from engine.canonical import canonical
from engine.errors import SopError
from engine.execution.confirm import operation_hash
from engine.execution.redact import redact, redact_text
from engine.model import Action, Sop

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.execution.result import RunResult
    from engine.storage.base import Store

#: Namespace of every idempotency key (uuid5 of run id + action id + suffix).
KEY_NAMESPACE = uuid.UUID("6f1c3c0e-2b7a-5f43-9a57-3f3f0a2d5e11")


_NS_BYTES = KEY_NAMESPACE.bytes
_VARIANT = {f"{n:x}": f"{(n & 0x3) | 0x8:x}" for n in range(16)}


def idempotency_key(run_id: str, action_id: str, suffix: str = "") -> str:
    """Stable for one run and action: a resumed or retried action sends the same key.

    Exactly ``str(uuid.uuid5(KEY_NAMESPACE, name))``, without the UUID object's overhead.
    """
    h = hashlib.sha1(_NS_BYTES + f"{run_id}\x1f{action_id}\x1f{suffix}".encode()).hexdigest()
    # version nibble 5; RFC 4122 variant: the top two bits of byte 8 are 10
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


class Services(Mapping[str, Any]):
    """Given to ``run(services=...)``, or built on first use by Registry.service factories."""

    def __init__(
        self, given: Mapping[str, Any] | None, factories: Mapping[str, Callable[..., Any]]
    ) -> None:
        self._made: dict[str, Any] = dict(given or {})
        self._factories = dict(factories)
        self._ctx: RunContext | None = None

    def bind(self, ctx: RunContext) -> None:
        """The context factories receive (the first one that asks)."""
        if self._ctx is None:
            self._ctx = ctx

    def __getitem__(self, name: str) -> Any:
        if name in self._made:
            return self._made[name]
        factory = self._factories.get(name)
        if factory is None:
            known = ", ".join(sorted({*self._made, *self._factories})) or "none"
            raise KeyError(f"no service {name!r} (registered: {known})")
        value = factory(self._ctx)
        self._made[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._made, *self._factories]))

    def __len__(self) -> int:
        return len({*self._made, *self._factories})


class RedactFilter(logging.Filter):
    """Rewrites each record's message (and traceback text) through ``redact`` before any handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_text(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class _JournalHandler(logging.Handler):
    """Log lines of a run go to its journal as ``log`` events (already redacted)."""

    def __init__(self, journal: Store, run_id: str, current: Callable[[], str | None]) -> None:
        super().__init__(logging.INFO)
        self._journal, self._run_id, self._current = journal, run_id, current

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = {"level": record.levelname, "message": record.getMessage()}
            if record.exc_text:
                data["exc"] = record.exc_text
            self._journal.append(self._run_id, "log", self._current(), data)
        except Exception:  # a log line must never break the run
            self.handleError(record)


def run_logger(journal: Store, run_id: str, current: Callable[[], str | None]) -> logging.Logger:
    """A logger private to one run (not in logging's global registry) that redacts every record.

    It propagates to the ``sop`` logger, so an application's logging setup still sees
    the (redacted) lines.
    """
    logger = logging.Logger(f"sop.run.{run_id}", logging.INFO)
    logger.parent = logging.getLogger("sop")
    logger.addFilter(RedactFilter())
    logger.addHandler(_JournalHandler(journal, run_id, current))
    return logger


class ChildRunner(Protocol):
    """Starts (or finds) a child run; the runner passes its own (``runner.child_run``)."""

    def __call__(
        self,
        sop: str,
        params: Mapping[str, Any],
        *,
        run_id: str,
        parent_run_id: str,
        registry: Registry | None,
        journal: Store,
        services: Mapping[str, Any] | None,
    ) -> RunResult: ...


class RunContext:
    """The handler's view of a run. ``state``/``output`` are plain dicts shared across actions."""

    def __init__(
        self,
        *,
        run_id: str,
        sop: Sop,
        params: Mapping[str, Any],
        state: dict[str, Any],
        output: dict[str, Any],
        action: Action,
        services: Services,
        log: Callable[[], logging.Logger],
        journal: Store,
        registry: Registry | None,
        confirmed: bool = False,
        confirmed_operations: frozenset[str] = frozenset(),
        attempt: int = 1,
        reconciling: bool = False,
        child_runner: ChildRunner | None = None,
    ) -> None:
        self.run_id = run_id
        self.sop = sop
        self.params: Mapping[str, Any] = (
            params if isinstance(params, MappingProxyType) else MappingProxyType(dict(params))
        )
        self.state = state
        self.output = output
        self.action = action
        self.services: Mapping[str, Any] = services
        self._log = log
        self.confirmed = confirmed
        self._attempt = attempt
        self._reconciling = reconciling
        self._journal = journal
        self._registry = registry
        self._confirmed_operations = confirmed_operations
        self._child_runner = child_runner
        self._children = 0
        self._records: dict[str, int] = {}
        services.bind(self)

    def begin_attempt(self, number: int) -> None:
        """Called by the engine before each call of the handler (1, then 2 for a retry, ...)."""
        self._attempt = number

    @property
    def attempt(self) -> int:
        """1 for the first call of this action's handler, 2 for its first retry, ..."""
        return self._attempt

    @property
    def reconciling(self) -> bool:
        """True when an earlier call of this action may have acted and its outcome is not
        known (the run was resumed after an ``unknown`` outcome or a crash mid-action).

        The same idempotency key is sent again either way; a handler whose provider
        forgets keys (Stripe: after 24 hours) can first look for what the earlier call
        made (e.g. by the run id it put in the object's metadata).
        """
        return self._reconciling

    @property
    def log(self) -> logging.Logger:
        """The run's logger (redacting, journaled); made when a handler first logs."""
        return self._log()

    def idempotency_key(self, suffix: str = "") -> str:
        """Same for every attempt and after a resume; ``suffix`` separates calls in one action."""
        return idempotency_key(self.run_id, self.action.id, suffix)

    def confirms(self, operation: Mapping[str, Any]) -> bool:
        """True when a person confirmed exactly this operation (the one a pause was raised for)."""
        return (
            self.confirmed and operation_hash(self.run_id, operation) in self._confirmed_operations
        )

    def record(self, kind: str, data: Mapping[str, Any]) -> None:
        """An audit record (e.g. kind="transaction"), redacted and hash-chained in the journal.

        Written once per key: the key is derived from this run and action, the record's
        kind and (redacted) content, and how many equal records this call of the action
        made before it. A handler re-run after a crash that lost its outcome records
        nothing twice; a retried or resumed attempt that records something different
        (a failure, then a success) keeps both.
        """
        if not isinstance(kind, str) or not kind:
            raise SopError("ctx.record: kind must be a non-empty string")
        digest = hashlib.sha256(f"{kind}\x1f{canonical(redact(dict(data)))}".encode()).hexdigest()
        count = self._records[digest] = self._records.get(digest, 0) + 1
        key = idempotency_key(self.run_id, self.action.id, f"record:{digest[:32]}:{count}")
        self._journal.add_record(self.run_id, self.action.id, kind, data, key=key)

    def run_child(self, sop_name: str, params: Mapping[str, Any]) -> RunResult:
        """Run another SOP as part of this action; journaled with this run as its parent.

        The child's run id is derived from this run, action and call order, so a
        resumed parent finds the child it already started (finished: its recorded
        result; interrupted: resumed) instead of starting a second one.
        """
        if self._child_runner is None:
            raise SopError("ctx.run_child: this context was made without a child runner")
        self._children += 1
        child_id = idempotency_key(self.run_id, self.action.id, f"child:{self._children}")
        self._journal.append(
            self.run_id,
            "child_run",
            self.action.id,
            {"sop": sop_name},
            raw={"child_run_id": child_id},
        )
        return self._child_runner(
            sop_name,
            params,
            run_id=child_id,
            parent_run_id=self.run_id,
            registry=self._registry,
            journal=self._journal,
            services=self.services,
        )

    def __repr__(self) -> str:
        return (
            f"RunContext(run_id={self.run_id!r}, action={self.action.id!r}, attempt={self.attempt})"
        )


def redacted(value: Any) -> Any:
    """Alias for handler authors: ``ctx.log.info("%s", redacted(obj))``."""
    return redact(value)
