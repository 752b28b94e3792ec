"""The pack's ``action`` and ``check``: every handler is scoped to the SOPs this pack serves.

A line like "validate all input parameters" is written the same way in many SOPs; the
pack's handler for it must bind only the pack's own SOPs, never a line of some other
SOP that happens to read the same (or tie with that SOP's own handler). A handler
without ``sop=`` is registered once per SOP of the pack (``handlers.payments.sops``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from engine.binding.registry import default_registry
from handlers.payments import sops

F = TypeVar("F", bound=Callable[..., Any])


def _scoped(
    kind: Callable[..., Callable[[F], F]], pattern: str, sop: str | None
) -> Callable[[F], F]:
    def register(func: F) -> F:
        for name in (sop,) if sop is not None else sops:
            kind(pattern, sop=name)(func)
        return func

    return register


def action(pattern: str, *, sop: str | None = None) -> Callable[[F], F]:
    """``engine.action``, for this pack's SOPs (all of them unless ``sop`` names one)."""
    return _scoped(default_registry.action, pattern, sop)


def check(pattern: str, *, sop: str | None = None) -> Callable[[F], F]:
    """``engine.check``, for this pack's SOPs (all of them unless ``sop`` names one)."""
    return _scoped(default_registry.check, pattern, sop)


__all__ = ["action", "check"]
