"""Faults the sandbox injects on demand, so tests can exercise every failure path.

A fault is armed through the control API and fires on the next ``times``
requests whose path starts with ``match`` (and whose method is ``method``, if
given). Faults are consumed in the order they were armed.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# 429/500/503/reset/timeout fire before the request reaches localstripe;
# drop_after lets localstripe act, then resets the connection instead of answering;
# delay holds the request ``seconds`` inside the idempotency lock, then forwards it
# (a slow Stripe: concurrent retries with the same key must wait, not execute).
# decline answers 402 card_error with ``decline_code`` (localstripe never produces
# insufficient_funds, fraudulent, ... itself).
FAULT_KINDS = ("429", "500", "503", "reset", "timeout", "drop_after", "delay", "decline")
METHODS = ("GET", "POST", "DELETE")
# timeout: longer than the SDK's default 80 s; the hold ends as soon as the client gives up.
DEFAULT_HOLD_SECONDS = 120.0
MAX_TIMES = 10_000


@dataclass
class Fault:
    """One armed fault; ``remaining`` counts down as it fires."""

    id: int
    fault: str
    match: str
    method: str | None
    times: int
    remaining: int
    seconds: float
    decline_code: str | None = None

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.match) and self.method in (None, method)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(spec: Mapping[str, Any], fault_id: int) -> Fault:
    """Validate a control-API fault spec; ValueError names the bad field."""
    fields = {"fault", "match", "method", "times", "seconds", "decline_code"}
    unknown = sorted(set(spec) - fields)
    if unknown:
        raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
    kind = spec.get("fault")
    if kind not in FAULT_KINDS:
        raise ValueError(f"fault: must be one of {', '.join(FAULT_KINDS)} (got {kind!r})")
    match = spec.get("match", "/v1/")
    if not isinstance(match, str) or not match.startswith("/"):
        raise ValueError(f"match: must be a path prefix starting with '/' (got {match!r})")
    method = spec.get("method")
    if method is not None:
        if not isinstance(method, str) or method.upper() not in (*METHODS, "*"):
            raise ValueError(f"method: must be one of {', '.join(METHODS)} (got {method!r})")
        method = None if method == "*" else method.upper()
    times = spec.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or not 1 <= times <= MAX_TIMES:
        raise ValueError(f"times: must be an integer from 1 to {MAX_TIMES} (got {times!r})")
    seconds = spec.get("seconds", DEFAULT_HOLD_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
        raise ValueError(f"seconds: must be a positive number (got {seconds!r})")
    decline_code = spec.get("decline_code")
    if decline_code is not None and (kind != "decline" or not isinstance(decline_code, str)):
        raise ValueError(
            f"decline_code: a string, only with fault 'decline' (got {decline_code!r})"
        )
    if kind == "decline" and decline_code is None:
        decline_code = "generic_decline"
    return Fault(fault_id, kind, match, method, times, times, float(seconds), decline_code)


class FaultTable:
    """The armed faults of one sandbox."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: Mapping[str, Any]) -> Fault:
        fault = parse_fault(spec, next(self._ids))
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching this request, consumed once; None if none."""
        for fault in self._faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def armed(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._faults]

    def clear(self) -> None:
        self._faults.clear()
