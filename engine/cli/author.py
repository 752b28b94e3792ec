"""``sop list`` and ``sop show``: what the catalog holds and how the engine reads one SOP."""

from __future__ import annotations

import argparse

from engine.cli.common import emit_json
from engine.language.catalog import entries, load
from engine.model import Action, ActionKind, Sop


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def cmd_list(args: argparse.Namespace) -> int:
    """Every SOP the catalog finds: name, title, version, status, path."""
    found = entries()
    if getattr(args, "json", False):
        listed = [
            {
                "name": e.name,
                "title": e.title,
                "version": e.version,
                "status": e.status,
                "path": str(e.path),
            }
            for e in found
        ]
        emit_json(listed, "catalog.schema.json")
        return 0
    if not found:
        print("no SOPs found (searched ./sops, SOP_PATH and the built-ins)")
        return 0
    rows = [["NAME", "TITLE", "VERSION", "STATUS", "PATH"]]
    rows += [[e.name, e.title, e.version or "-", e.status or "-", str(e.path)] for e in found]
    print(_table(rows))
    return 0


def _action_line(action: Action) -> str:
    branch = f" [For {action.branch}]" if action.branch else ""
    block = " (error handling)" if action.block == "error_handling" else ""
    level = ("check " if action.kind is ActionKind.CHECK else "") + action.level.value
    return f"    L{action.line:<4} {level:<10} {action.text}{branch}{block}"


def _summary(sop: Sop) -> str:
    out = [f"{sop.title or sop.name}  ({sop.name})", f"path: {sop.path or '-'}"]
    for key, value in sop.metadata.items():
        out.append(f"{key}: {value}")
    if sop.parameters:
        out.append("")
        out.append("Parameters:")
        for p in sop.parameters:
            need = "required" if p.required else "optional"
            kind = f" ({p.type})" if p.type else ""
            default = f", default {p.default!r}" if p.default is not None else ""
            out.append(f"  L{p.line:<4} {p.name}{kind} {need}{default}: {p.description}")
    if sop.guards:
        out.append("")
        out.append("Security Considerations (guards, run first):")
        out.extend(_action_line(g) for g in sop.guards)
    for step in sop.steps:
        out.append("")
        out.append(f"Step {step.number}. {step.title}  (line {step.line})")
        lines = sorted((*step.actions, *step.checks), key=lambda a: a.line)
        out.extend(_action_line(line) for line in lines)
        for rule in step.error_rules:
            out.append(f"    L{rule.line:<4} if {rule.condition}: {rule.response}")
        for branch in step.branches:
            target = f"{branch.param}={branch.value}" if branch.param else "unresolved"
            out.append(f"    L{branch.line:<4} branch For {branch.label} -> {target}")
    if sop.recovery:
        out.append("")
        out.append("Error Recovery:")
        for r in sop.recovery:
            policy = []
            if r.retry is not None:
                policy.append("retry" if r.retry else "no retry")
            if r.max_retries is not None:
                policy.append(f"max {r.max_retries}")
            if r.backoff:
                policy.append("backoff")
            if r.escalate:
                policy.append(f"escalate{' to ' + r.escalate_to if r.escalate_to else ''}")
            if r.notify:
                policy.append("notify")
            if r.block:
                policy.append("block")
            out.append(f"  L{r.line:<4} {r.error_type}: {', '.join(policy) or '-'}")
    if sop.examples:
        out.append("")
        out.append("Examples:")
        out.extend(f"  L{e.line:<4} {e.title}" for e in sop.examples)
    if sop.diagnostics:
        out.append("")
        out.append("Diagnostics:")
        out.extend(
            f"  L{d.line:<4} {d.severity.value} {d.code}: {d.message}" for d in sop.diagnostics
        )
    return "\n".join(out)


def cmd_show(args: argparse.Namespace) -> int:
    """One SOP as the engine reads it; ``--json`` is the model, validated by sop.schema.json."""
    sop = load(args.name)
    if getattr(args, "json", False):
        emit_json(sop.to_dict(), "sop.schema.json")
    else:
        print(_summary(sop))
    return 0
