"""What a registration is (``HandlerDef``) and what binding a line gives (``Match``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.model import ActionKind


@dataclass(frozen=True)
class HandlerDef:
    """One registered handler; ``file:line`` is where its function is defined."""

    pattern: str
    kind: ActionKind  # ACTION handlers bind ACTION and GUARD lines; CHECK binds CHECK lines
    func: Callable[..., Any]
    name: str  # module.qualname
    file: str
    line: int
    sop: str | None = None
    step: int | str | None = None
    timeout: float | None = None

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def scope_rank(self) -> int:
        """Narrower scope wins: sop+step 3, step 2, sop 1, global 0."""
        return (2 if self.step is not None else 0) + (1 if self.sop is not None else 0)

    def applies(self, sop: str | None, step: int | str | None) -> bool:
        if self.sop is not None and self.sop != sop:
            return False
        return self.step is None or (step is not None and str(self.step) == str(step))

    def describe(self) -> str:
        scope = "".join(
            f", {k}={v!r}" for k, v in (("sop", self.sop), ("step", self.step)) if v is not None
        )
        return f"{self.name} ({self.location}, pattern {self.pattern!r}{scope})"


@dataclass(frozen=True)
class Match:
    handler: HandlerDef
    captures: dict[str, Any]


__all__ = ["HandlerDef", "Match"]
