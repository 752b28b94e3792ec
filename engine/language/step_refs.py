"""Step references in prose ("return to step 5.2", "before moving to Step 7") must name
a step of the SOP: a reference to nothing sends the agent nowhere (SOP151, an error).

A step is a ``### N.`` heading; a sub-step a ``#### N.M`` heading under it. Code blocks
are not read (an example plan may say "Step 1:" of its own)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from engine.model import Diagnostic, Severity, Sop

__all__ = ["step_reference_diagnostics"]

_REFERENCE = re.compile(r"\b[Ss]teps? (\d{1,9}(?:\.\d{1,9})*)\b")
_SUB_HEADING = re.compile(r"^ {0,3}#{4,6}[ \t]+(?:[Ss]tep[ \t]+)?(\d{1,9}(?:\.\d{1,9})+)")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")


def step_reference_diagnostics(sop: Sop) -> Iterator[Diagnostic]:
    if "tep " not in sop.text:  # no reference at all: the common case
        return
    lines = sop.text.split("\n")
    known = {str(step.number) for step in sop.steps}
    for line in lines:
        found = _SUB_HEADING.match(line)
        if found is not None and found.group(1).split(".", 1)[0] in known:
            known.add(found.group(1))
    fence: str | None = None
    for number, line in enumerate(lines, start=1):
        marker = _FENCE.match(line)
        if marker is not None:
            fence = None if fence == marker.group(1) else (fence or marker.group(1))
            continue
        if fence is not None or line.lstrip().startswith("#"):
            continue
        for ref in _REFERENCE.finditer(line):
            target = ref.group(1).rstrip(".")
            if target not in known:
                yield Diagnostic(
                    "SOP151",
                    Severity.ERROR,
                    f"'{ref.group(0)}' names no step: the steps are "
                    f"{', '.join(sorted(known, key=_order)) or 'none'}; fix the number",
                    number,
                    ref.start() + 1,
                    sop.path,
                )


def _order(number: str) -> tuple[int, ...]:
    return tuple(int(part) for part in number.split("."))
