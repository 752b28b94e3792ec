"""SOP/handler coverage for authors and CI: which lines no code backs, which code binds nothing.

Coverage is static: every line of every SOP is bound (branches are not selected),
because CI must know that each path can run, whatever parameters arrive later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree as ET

from engine.binding.packs import serves
from engine.binding.planner import location
from engine.binding.registry import HandlerDef, Registry
from engine.errors import BindingError
from engine.model import Action, ActionKind, Level, Sop

CATEGORIES = ("must", "should", "may", "checks", "guards")


def category(action: Action) -> str:
    if action.kind is ActionKind.CHECK:
        return "checks"
    if action.kind is ActionKind.GUARD:
        return "guards"
    if action.level.required:
        return "must"
    if action.level in (Level.SHOULD, Level.SHOULD_NOT):
        return "should"
    return "may"


@dataclass(frozen=True)
class LineCoverage:
    action: Action
    location: str
    handler: HandlerDef | None
    error: str | None = None  # a tie between handlers
    performer: str = "code"  # who performs the line when no handler binds it

    @property
    def status(self) -> str:
        """bound, ambiguous, performer (an agent's or person's task) or unbound."""
        if self.error is not None:
            return "ambiguous"
        if self.handler is not None:
            return "bound"
        return "unbound" if self.performer == "code" else "performer"

    @property
    def required(self) -> bool:
        return self.action.level.required

    def fails(self, strict: bool) -> bool:
        """Required code lines (and, strictly, SHOULD lines) must be bound unambiguously;
        a performer's line is its task, never a gap in the code."""
        if self.status in ("bound", "performer"):
            return False
        return self.required or (strict and self.action.level in (Level.SHOULD, Level.SHOULD_NOT))

    def label(self) -> str:
        return f"{self.location}: {self.action.level.value} {self.action.text}"

    @property
    def who(self) -> str:
        """Who performs the line in a run: code when bound, else the line's performer."""
        return "code" if self.handler is not None else self.performer


@dataclass(frozen=True)
class SopCoverage:
    sop: Sop
    lines: tuple[LineCoverage, ...]

    def counts(self) -> dict[str, tuple[int, int]]:
        """category -> (bound, total)."""
        out = {name: [0, 0] for name in CATEGORIES}
        for line in self.lines:
            cell = out[category(line.action)]
            cell[1] += 1
            cell[0] += line.status == "bound"
        return {name: (bound, total) for name, (bound, total) in out.items()}

    def performers(self) -> dict[str, int]:
        """Lines code binds, lines an agent or person performs, lines nothing covers."""
        out = {"code": 0, "performer": 0, "unbound": 0}
        for line in self.lines:
            status = line.status
            out[
                "code" if status == "bound" else "performer" if status == "performer" else "unbound"
            ] += 1
        return out

    def failures(self, strict: bool = False) -> list[LineCoverage]:
        return [line for line in self.lines if line.fails(strict)]

    def unbound(self) -> list[LineCoverage]:
        return [line for line in self.lines if line.status != "bound"]


@dataclass(frozen=True)
class CoverageReport:
    sops: tuple[SopCoverage, ...]
    unused: tuple[HandlerDef, ...]
    strict: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(s.failures(self.strict) for s in self.sops)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; validated against schemas/coverage.schema.json."""
        import jsonschema

        from engine.language.resources import load_schema

        data = {
            "ok": self.ok,
            "strict": self.strict,
            "sops": [
                {
                    "name": s.sop.name,
                    "path": s.sop.path,
                    "ok": not s.failures(self.strict),
                    "counts": {k: {"bound": b, "total": t} for k, (b, t) in s.counts().items()},
                    "performers": s.performers(),
                    "lines": [_line_dict(line) for line in s.lines],
                }
                for s in self.sops
            ],
            "unused_handlers": [
                {
                    "name": h.name,
                    "pattern": h.pattern,
                    "kind": h.kind.value,
                    "location": h.location,
                    "sop": h.sop,
                    "step": None if h.step is None else str(h.step),
                }
                for h in self.unused
            ],
        }
        jsonschema.validate(data, load_schema("coverage.schema.json"))
        return data

    def to_text(self) -> str:
        out: list[str] = []
        for s in self.sops:
            counts = s.counts()
            summary = "  ".join(
                f"{name.upper() if name in ('must', 'should', 'may') else name} {b}/{t}"
                for name, (b, t) in counts.items()
            )
            verdict = "ok" if not s.failures(self.strict) else "SHORT"
            out.append(f"{s.sop.name} ({s.sop.path or 'built-in'}): {summary}  [{verdict}]")
            who = s.performers()
            if who["performer"]:
                out.append(
                    f"  code-bound {who['code']}  performer {who['performer']}"
                    f"  unbound {who['unbound']}"
                )
            for line in s.unbound():
                mark = line.performer if line.status == "performer" else "skip"
                mark = "FAIL" if line.fails(self.strict) else mark
                why = f" ({line.error})" if line.error else ""
                out.append(f"  {mark} {line.label()}{why}")
        if self.unused:
            out.append("unused handlers (match no line):")
            for h in self.unused:
                out.append(f"  {h.location}: {h.name} {h.pattern!r}")
        out.append("coverage ok" if self.ok else "coverage short: required lines are unbound")
        return "\n".join(out)

    def to_junit(self) -> str:
        """One testsuite per SOP, one testcase per line; a failure per required unbound line."""
        root = ET.Element("testsuites", name="sop-coverage")
        for s in self.sops:
            fails = s.failures(self.strict)
            suite = ET.SubElement(
                root,
                "testsuite",
                name=s.sop.name,
                tests=str(len(s.lines)),
                failures=str(len(fails)),
                skipped=str(sum(1 for x in s.unbound() if not x.fails(self.strict))),
                errors="0",
            )
            for line in s.lines:
                case = ET.SubElement(
                    suite,
                    "testcase",
                    classname=f"sop.{s.sop.name}",
                    name=f"L{line.action.line} {line.action.level.value} {line.action.text}",
                    file=s.sop.path or s.sop.name,
                    line=str(line.action.line),
                )
                if line.fails(self.strict):
                    failure = ET.SubElement(
                        case, "failure", message=line.error or "no handler", type=line.status
                    )
                    failure.text = line.label()
                elif line.status == "performer":
                    ET.SubElement(case, "skipped", message=f"performed by the {line.performer}")
                elif line.status != "bound":
                    ET.SubElement(case, "skipped", message=line.error or "no handler")
        ET.indent(root)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _line_dict(line: LineCoverage) -> dict[str, Any]:
    a = line.action
    return {
        "location": line.location,
        "line": a.line,
        "kind": a.kind.value,
        "level": a.level.value,
        "step": a.step,
        "text": a.text,
        "required": line.required,
        "status": line.status,
        "performer": line.who,
        "handler": line.handler.name if line.handler else None,
        "error": line.error,
    }


def sop_coverage(sop: Sop, registry: Registry, performer: str | None = None) -> SopCoverage:
    """Every line of ``sop`` with its handler (or tie), and who performs it when unbound
    (its step's or the SOP's **Performer**, else ``performer``, else code)."""
    lines: list[LineCoverage] = []
    for action in sop.all_actions():
        where = location(action, sop)
        who = sop.performer_of(action, performer)
        kind = ActionKind.CHECK if action.kind is ActionKind.CHECK else ActionKind.ACTION
        try:
            found = registry.match(action.text, sop=sop.name, step=action.step, kind=kind)
        except BindingError as exc:
            lines.append(LineCoverage(action, where, None, str(exc), who))
            continue
        lines.append(LineCoverage(action, where, found.handler if found else None, None, who))
    return SopCoverage(sop, tuple(lines))


def coverage(sops: Iterable[Sop], registry: Registry, *, strict: bool = False) -> CoverageReport:
    """Coverage of each SOP, and the handlers serving these SOPs that bind nothing.

    A handler serves an SOP by its own scope, or, unscoped, by its pack's ``sops``
    (``engine.binding.packs.serves``): the payments pack is not "unused" for an
    unrelated SOP. A function registered for several SOPs counts once.
    """
    reports = tuple(sop_coverage(sop, registry) for sop in sops)
    names = {r.sop.name for r in reports}
    used = {_same(line.handler) for r in reports for line in r.lines if line.handler is not None}
    unused: dict[tuple[int, str, ActionKind], HandlerDef] = {}
    for h in registry.handlers():
        if _same(h) not in used and any(serves(h, name) for name in names):
            unused.setdefault(_same(h), h)
    return CoverageReport(reports, tuple(unused.values()), strict)


def _same(handler: HandlerDef) -> tuple[int, str, ActionKind]:
    """One function registered for several SOPs (a pack's) is one handler: used once, used."""
    return id(handler.func), handler.pattern, handler.kind


__all__ = ["CoverageReport", "LineCoverage", "SopCoverage", "category", "coverage", "sop_coverage"]
