"""``sop run``, ``sop resume``, ``sop report``, ``sop runs``, ``sop inspect``, ``sop journal``.

Exit codes: 0 succeeded, 1 failed or refused, 2 invalid parameters / unknown SOP or
run (nothing ran), 3 paused for confirmation (the command to confirm is printed) or
waiting for a performer's reports (the tasks and `sop report` are printed),
4 outcome unknown (a side effect may have happened; the ``sop resume`` command that
reconciles it is printed).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PAUSED,
    EXIT_UNKNOWN,
    emit_json,
    parse_params,
    raw_params,
)
from engine.errors import PlanRefused, UsageError
from engine.execution.cause import summary
from engine.execution.runner import RESULT_SCHEMA, RunResult, RunStatus, recorded_result
from engine.storage.journal import Journal, RunRow, default_path

if TYPE_CHECKING:
    from engine.binding.registry import Registry


def _journal_path(args: argparse.Namespace) -> Path:
    return Path(args.journal) if getattr(args, "journal", None) else default_path()


def _existing_journal(args: argparse.Namespace) -> Journal | None:
    """Read-only commands never create a journal file."""
    path = _journal_path(args)
    return Journal(path) if path.is_file() else None


def recorded_run(args: argparse.Namespace) -> tuple[Journal, RunRow]:
    """The journal and the row of ``args.run_id``; UsageError (exit 2) when either is missing."""
    journal = _existing_journal(args)
    if journal is None:
        raise UsageError(f"unknown run '{args.run_id}' (no journal at {_journal_path(args)})")
    row = journal.run(args.run_id)
    if row is None:
        journal.close()
        raise UsageError(f"unknown run '{args.run_id}' (journal {journal.path})")
    return journal, row


def _exit_code(result: RunResult) -> int:
    if result.status is RunStatus.SUCCEEDED:
        return EXIT_OK
    if result.status in (RunStatus.PAUSED, RunStatus.WAITING):
        return EXIT_PAUSED
    if result.status is RunStatus.UNKNOWN:
        return EXIT_UNKNOWN
    return EXIT_FAILED


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def resume_command(result: RunResult, args: argparse.Namespace) -> str:
    """What a person types to confirm the pending operation (or to reconcile an unknown one)."""
    command = f"sop resume {result.run_id}"
    if result.status is not RunStatus.UNKNOWN:
        command += f" --confirm {(result.pending or {}).get('token') or 'TOKEN'}"
    if getattr(args, "journal", None):
        command += f" --journal {shlex.quote(str(args.journal))}"
    return command


def render(result: RunResult, args: argparse.Namespace | None = None) -> str:
    """The text report: status line, output fields, errors, then every line of the SOP."""
    data = result.to_dict(validate=False)
    lines = [
        f"run {result.run_id}: {result.sop} {result.version or ''}".rstrip() + f" {data['status']}"
    ]
    if data["output"]:
        lines.append("output:")
        lines += [f"  {key}: {_value(value)}" for key, value in data["output"].items()]
    if data["errors"]:
        lines.append("errors:")
        lines += [f"  {e}" for e in data["errors"]]
    if data["warnings"]:
        lines.append("warnings:")
        lines += [f"  {w}" for w in data["warnings"]]
    lines.append("actions:")
    for action in data["actions"]:
        tries = f" [{action['attempts']} attempts]" if action["attempts"] > 1 else ""
        reason = f"  ({action['reason']})" if action["reason"] else ""
        lines.append(
            f"  {action['status']:<8} {action['level']:<9} L{action['line']:<4} "
            f"{action['text']}{tries}{reason}"
        )
        if action.get("cause"):
            lines.append(f"           cause: {summary(action['cause'])}")
    if result.status is RunStatus.PAUSED and result.pending:
        lines.append(f"paused: {data['pending']['message']}")
        lines.append(f"confirm before {data['pending']['expires_at']} with:")
        lines.append(f"  {resume_command(result, args or argparse.Namespace())}")
    if result.status is RunStatus.WAITING:
        from engine.cli.guided import task_lines

        lines += task_lines(result, args)
    if result.status is RunStatus.UNKNOWN:
        lines.append(
            "outcome unknown: the side effect may have happened (the request was sent, no "
            "answer came back). Do not run it again; reconcile it (same idempotency key) with:"
        )
        lines.append(f"  {resume_command(result, args or argparse.Namespace())}")
    return "\n".join(lines)


def _debug(result: RunResult) -> None:
    """``--debug``: each failed action's exception type, handler file:line and traceback."""
    for action in result.actions:
        if action.cause is None:
            continue
        head = f"debug: L{action.line} {action.status.value}: {summary(action.cause)}"
        print(head, file=sys.stderr)
        if action.traceback:
            print(action.traceback.rstrip("\n"), file=sys.stderr)


def emit_result(result: RunResult, args: argparse.Namespace) -> int:
    if getattr(args, "debug", False):
        _debug(result)
    if getattr(args, "json", False):
        emit_json(result.to_dict(), RESULT_SCHEMA)
    else:
        print(render(result, args))
    return _exit_code(result)


def _walked(
    result: RunResult, args: argparse.Namespace, registry: Registry, journal: Journal
) -> int:
    """On a terminal, a person walks a waiting run's checklist (Ctrl-C: it stays waiting)."""
    from engine.cli.guided import interactive, walk_checklist

    if interactive(args, result):
        try:
            result = walk_checklist(result, registry=registry, journal=journal)
        except (KeyboardInterrupt, EOFError):
            print(f"\nrun {result.run_id} left waiting; continue with: sop resume {result.run_id}")
            return EXIT_PAUSED
    return emit_result(result, args)


def _refused(name: str, exc: PlanRefused) -> int:
    count = len(exc.lines)
    print(
        f"sop: error: refusing to run {name}: {count} required line(s) have no handler"
        " (nothing ran):",
        file=sys.stderr,
    )
    for line in exc.lines:
        print(f"  {line}", file=sys.stderr)
    return EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    from engine.binding.packs import load_handlers
    from engine.execution.runner import run
    from engine.language.catalog import load

    sop = load(args.name)
    params = parse_params(args, sop)
    registry = load_handlers(args.handlers, sops=(sop.name,))
    with Journal(_journal_path(args), lazy=True) as journal:  # a refused run creates none
        try:
            result = run(
                sop,
                params,
                registry=registry,
                journal=journal,
                confirm=args.confirm,
                handlers=list(args.handlers),
                performer=args.performer,
            )
        except PlanRefused as exc:
            return _refused(sop.name, exc)
        return _walked(result, args, registry, journal)


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.binding.packs import load_handlers
    from engine.execution.runner import resume, sop_for_resume

    journal, _ = recorded_run(args)
    with journal:
        started = journal.verified_run(args.run_id)  # before importing the modules it names
        registry = load_handlers([*started.handlers, *args.handlers], sops=(started.sop,))
        params = None
        if raw_params(args):  # the exact values of parameters redaction altered
            params = parse_params(args, sop_for_resume(started))
        try:
            result = resume(
                args.run_id,
                confirm=args.confirm,
                params=params,
                registry=registry,
                journal=journal,
            )
        except PlanRefused as exc:
            return _refused(started.sop, exc)
        return _walked(result, args, registry, journal)


def cmd_report(args: argparse.Namespace) -> int:
    """``sop report RUN_ID TASK --done|--skip|--fail``: one report, then the run goes on
    (exit 3 while it still waits; the open tasks go to stderr)."""
    from engine.binding.packs import load_handlers
    from engine.execution.guided import report

    journal, _ = recorded_run(args)
    with journal:
        started = journal.verified_run(args.run_id)  # before importing the modules it names
        registry = load_handlers([*started.handlers, *args.handlers], sops=(started.sop,))
        item = {"id": args.task, "outcome": args.outcome, "note": args.note}
        result = report(args.run_id, [item], by=args.by, registry=registry, journal=journal)
        code = emit_result(result, args)
    if result.status is RunStatus.WAITING:
        still = ", ".join(f"{t['file']}:{t['line']}" for t in result.tasks)
        print(f"sop: recorded; run {result.run_id} still waits on: {still}", file=sys.stderr)
        return EXIT_PAUSED
    return code


def cmd_runs(args: argparse.Namespace) -> int:
    journal = _existing_journal(args)
    rows = []
    if journal is not None:
        with journal:
            rows = [row.to_dict() for row in journal.runs()]
    if args.json:
        emit_json(rows)
        return EXIT_OK
    if not rows:
        print(f"no runs (journal {_journal_path(args)})")
        return EXIT_OK
    print(f"{'RUN':<32}  {'STATUS':<9}  {'SOP':<24}  {'VERSION':<8}  STARTED")
    for row in rows:
        child = f"  (child of {row['parent_run_id']})" if row["parent_run_id"] else ""
        print(
            f"{row['run_id']:<32}  {row['status']:<9}  {row['sop']:<24}  "
            f"{row['version'] or '-':<8}  {row['started']}{child}"
        )
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    journal, row = recorded_run(args)
    with journal:
        events = journal.events(args.run_id)
        started = journal.started(args.run_id)
        records = journal.records(args.run_id)
        children = [c.to_dict() for c in journal.children(args.run_id)]
        result = recorded_result(journal, args.run_id)
    params = started.params if started is not None else row.params  # the chained copy
    if args.json:
        emit_json(
            {
                "run": {**row.to_dict(), "params": params, "handlers": row.handlers},
                "result": result.to_dict() if result else None,
                "events": [e.to_dict() for e in events],
                "records": records,
                "children": children,
            }
        )
        return EXIT_OK
    print(f"run {row.run_id}: {row.sop} {row.version or ''} {row.status}")
    print(f"  started {row.started}, updated {row.updated}")
    if row.parent_run_id:
        print(f"  child of {row.parent_run_id}")
    print("params:")
    for key, value in params.items():
        print(f"  {key}: {_value(value)}")
    if row.status == RunStatus.UNKNOWN.value:
        print(f"  outcome unknown: reconcile it with: sop resume {row.run_id}")
    if result is not None:
        tracebacks = {
            e.action_id: e.data["traceback"]
            for e in events
            if e.type == "action_finished" and isinstance(e.data.get("traceback"), str)
        }
        print("actions:")
        for action in result.actions:
            reason = f"  ({action.reason})" if action.reason else ""
            status = action.status.value
            print(f"  {status:<8} {action.level:<9} L{action.line:<4} {action.text}{reason}")
            if action.cause:
                print(f"           cause: {summary(action.to_dict()['cause'])}")
            if action.cause and action.id in tracebacks:
                print("           traceback:")
                for line in tracebacks[action.id].rstrip("\n").splitlines():
                    print(f"             {line}")
    reports = [e for e in events if e.type == "task_reported"]
    if reports:
        print("reports:")
        for event in reports:
            data = event.data
            note = f": {data.get('note')}" if data.get("note") else ""
            print(
                f"  {data.get('at')} {event.action_id:<22} {data.get('outcome'):<8}"
                f" by {data.get('by')}{note}"
            )
    print("events:")
    for event in events:
        detail = dict(event.data)
        if event.type in ("run_finished", "run_paused", "run_waiting") and isinstance(
            detail.get("result"), dict
        ):
            final = detail.pop("result")
            detail.update(status=final.get("status"), errors=final.get("errors"))
        shown = json.dumps(detail, default=str, sort_keys=True)
        if len(shown) > 160:
            shown = shown[:157] + "..."
        print(f"  {event.seq:>6} {event.ts} {event.type:<18} {event.action_id or '-':<22} {shown}")
    if records:
        print("records:")
        for record in records:
            print(
                f"  {record['ts']} {record['kind']:<14} {record['action_id'] or '-':<22} "
                f"{json.dumps(record['data'], default=str, sort_keys=True)}"
            )
    if children:
        print("children:")
        for child in children:
            print(f"  {child['run_id']} {child['sop']} {child['status']}")
    return EXIT_OK


def cmd_journal(args: argparse.Namespace) -> int:
    """``verify [--head SEQ:HASH]``: chain and tables; ``head``: the chain head to keep
    outside the database (a whole chain recomputed by someone with write access is only
    caught against a head recorded elsewhere)."""
    journal = _existing_journal(args)
    if journal is None:
        raise UsageError(f"no journal at {_journal_path(args)}")
    if args.action == "head":
        with journal:
            seq, digest = journal.head()
        print(f"{seq}:{digest}")
        return EXIT_OK
    with journal:
        problems = journal.verify(head=getattr(args, "head", None))
    if not problems:
        print(f"journal {journal.path}: intact")
        return EXIT_OK
    print(f"journal {journal.path}: broken: {problems[0]}", file=sys.stderr)
    for problem in problems[1:]:
        print(f"  {problem}", file=sys.stderr)
    return EXIT_FAILED


__all__ = [
    "cmd_inspect",
    "cmd_journal",
    "cmd_report",
    "cmd_resume",
    "cmd_run",
    "cmd_runs",
    "emit_result",
    "recorded_run",
    "render",
]
