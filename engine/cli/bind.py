"""``sop plan``, ``sop coverage`` and ``sop stub``: binding seen from the command line."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from engine.binding.planner import Binding, Plan, location
from engine.cli.common import EXIT_FAILED, EXIT_OK
from engine.model import Action, Sop

if TYPE_CHECKING:
    from engine.binding.registry import Registry


def _load(name: str) -> Sop:
    from engine.language.catalog import load

    return load(name)


def _registry(args: argparse.Namespace, sops: list[Sop]) -> Registry:
    """The handlers of ``--handlers`` and of the packs serving these SOPs (no other pack)."""
    from engine.binding.packs import load_handlers

    return load_handlers(getattr(args, "handlers", None) or (), sops=[s.name for s in sops])


def _where(action: Action) -> str:
    if action.step is None:
        return "guard"
    return f"step {action.step}"


def _describe(binding: Binding) -> str:
    if binding.status == "bound" and binding.match is not None:
        captures = binding.match.captures
        shown = ", ".join(f"{k}={v!r}" for k, v in captures.items())
        return f"-> {binding.match.handler.name}" + (f"({shown})" if shown else "")
    if binding.status == "off_path":
        return f"will be skipped: {binding.reason}"
    if binding.status == "performer":
        return f"-> {binding.performer}"
    if binding.required:
        return "UNBOUND: no handler"
    return "will be skipped: no handler"


def format_plan(result: Plan) -> str:
    sop = result.sop
    version = f" {sop.version}" if sop.version else ""
    params = " ".join(f"{k}={v}" for k, v in result.params.items())
    out = [f"plan {sop.name}{version} ({sop.path or 'built-in'}) {params}".rstrip()]
    for b in result.bindings:
        a = b.action
        out.append(
            f"  L{a.line:<4} {_where(a):<7} {b.performer:<6} {a.level.value:<10} {a.text}"
            f"  {_describe(b)}"
        )
    tasks = len(result.performer_lines)
    if not result.ok:
        verdict = f"refused: {len(result.unbound)} required line(s) unbound"
    elif tasks:
        verdict = f"ready: every required line is bound or performed ({tasks} task(s))"
    else:
        verdict = "ready: every required line is bound"
    out.append(verdict)
    return "\n".join(out)


def cmd_plan(args: argparse.Namespace) -> int:
    from engine.binding.planner import plan
    from engine.cli.common import emit_json, parse_params

    sop = _load(args.name)
    params = parse_params(args, sop)
    registry = _registry(args, [sop])
    result = plan(sop, params, registry=registry, performer=args.performer)
    if args.json:
        emit_json(result.to_dict(), "plan.schema.json")
    else:
        print(format_plan(result))
    for b in result.unbound:
        print(f"{location(b.action, sop)}: {b.action.level.value} {b.action.text}", file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def cmd_coverage(args: argparse.Namespace) -> int:
    from engine.binding.coverage import coverage
    from engine.cli.common import emit_json

    names = list(args.names)
    if not names:
        from engine.language.catalog import entries

        names = [e.name for e in entries()]
    sops = [_load(name) for name in names]
    report = coverage(sops, _registry(args, sops), strict=args.strict)
    if args.format == "json":
        emit_json(report.to_dict(), "coverage.schema.json")
    elif args.format == "junit":
        sys.stdout.write(report.to_junit() + "\n")
    else:
        print(report.to_text())
    return EXIT_OK if report.ok else EXIT_FAILED


def cmd_stub(args: argparse.Namespace) -> int:
    from engine.binding.stub import render

    sop = _load(args.name)
    sys.stdout.write(render(sop, _registry(args, [sop])))
    return EXIT_OK
