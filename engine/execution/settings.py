"""Durations from the environment (SOP_*_SECONDS), read one way with one-line errors."""

from __future__ import annotations

import math
import os

from engine.errors import UsageError


def seconds(name: str, default: float, *, zero: str | None = None) -> float:
    """``$name`` as seconds, ``default`` when unset.

    Negative, non-numeric and non-finite values are a UsageError naming the variable.
    Zero is allowed only when ``zero`` says what it means (e.g. "no timeout").
    """
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and zero is None):
        allowed = f">= 0 ({zero} at 0)" if zero is not None else "> 0"
        raise UsageError(f"{name}={raw!r}: expected a number of seconds {allowed}")
    return value
