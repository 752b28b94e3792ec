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
import time
from datetime import UTC, datetime, timedelta
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
from engine.cli.progress import ObservedJournal, display_for
from engine.cli.timeline import (
    STOPPED_EXIT,
    Describer,
    event_lines,
    in_flight,
    instant,
    not_run_lines,
    started_line,
    timeline_json,
)
from engine.errors import PlanRefused, SopError, UsageError
from engine.execution.cause import summary
from engine.execution.runner import RESULT_SCHEMA, RunResult, RunStatus, recorded_result
from engine.storage.journal import Journal, RunRow
from engine.storage.location import chosen, exists
from engine.storage.run_status import INTERRUPTED, current, current_status
from engine.storage.runids import resolve_run_id

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.model import Sop


def _journal_path(args: argparse.Namespace) -> str | Path:
    return chosen(getattr(args, "journal", None))


def _existing_journal(args: argparse.Namespace) -> Journal | None:
    """Read-only commands never create a journal file."""
    path = _journal_path(args)
    return Journal(path) if exists(path) else None


def recorded_run(args: argparse.Namespace) -> tuple[Journal, RunRow]:
    """The journal and the row of ``args.run_id``; UsageError (exit 2) when either is missing."""
    journal = _existing_journal(args)
    if journal is None:
        raise UsageError(f"unknown run '{args.run_id}' (no journal at {_journal_path(args)})")
    try:
        args.run_id = resolve_run_id(journal, args.run_id)
    except UsageError:
        journal.close()
        raise
    row = journal.run(args.run_id)
    assert row is not None
    return journal, row


def _exit_code(result: RunResult) -> int:
    if result.status is RunStatus.SUCCEEDED:
        return EXIT_OK
    if result.status in (RunStatus.PAUSED, RunStatus.WAITING):
        return EXIT_PAUSED
    if result.status is RunStatus.UNKNOWN:
        return EXIT_UNKNOWN
    if result.status is RunStatus.QUEUED:  # confirmed; a worker continues it
        return EXIT_OK
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


def _continue_command(run_id: str, args: argparse.Namespace) -> str:
    """``sop resume RUN_ID`` (with the ``--journal`` this command was given)."""
    command = f"sop resume {run_id}"
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
    unreached: dict[str, int] = {}
    for action in data["actions"]:
        if action["status"] == "skipped" and str(action["reason"] or "").startswith("not reached"):
            unreached[action["reason"]] = unreached.get(action["reason"], 0) + 1
            continue
        tries = f" [{action['attempts']} attempts]" if action["attempts"] > 1 else ""
        reason = f"  ({action['reason']})" if action["reason"] else ""
        lines.append(
            f"  {action['status']:<8} {action['level']:<9} L{action['line']:<4} "
            f"{action['text']}{tries}{reason}"
        )
        if action.get("cause"):
            lines.append(f"           cause: {summary(action['cause'])}")
    for reason, count in unreached.items():
        lines.append(f"  {count} line{'s' if count != 1 else ''} {reason}")
    if result.status is RunStatus.PAUSED and result.pending:
        lines.append(f"paused: {data['pending']['message']}")
        lines.append(f"confirm before {data['pending']['expires_at']} with:")
        lines.append(f"  {resume_command(result, args or argparse.Namespace())}")
    if result.status is RunStatus.WAITING:
        from engine.cli.guided import task_lines

        lines += task_lines(result, args)
    if result.status is RunStatus.QUEUED:
        lines.append(
            f"queued: a worker continues it; follow it with: sop inspect {result.run_id} --follow"
        )
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
    if args.submit:
        return _submit(args, sop, params, registry)
    if args.queue:
        raise UsageError("--queue: only with --submit")
    display = display_for(sop, quiet=args.quiet)
    # a refused run creates no journal (lazy)
    with ObservedJournal(_journal_path(args), display, lazy=True) as journal:
        try:
            result = run(
                sop,
                params,
                registry=registry,
                journal=journal,
                confirm=args.confirm,
                handlers=list(args.handlers),
                by=args.as_,
                performer=args.performer,
            )
        except PlanRefused as exc:
            return _refused(sop.name, exc)
        finally:
            display.close()
        return _walked(result, args, registry, journal)


def _submit(args: argparse.Namespace, sop: Sop, params: dict[str, Any], registry: Registry) -> int:
    """``sop run NAME --submit``: the run's id (and queue) at once; a worker runs it."""
    from engine.distributed.settings import DEFAULT_QUEUE
    from engine.distributed.submit import submit
    from engine.storage.journal import Journal

    if args.confirm:
        raise UsageError("--submit starts a new run; confirm a paused one with sop resume")
    queue = args.queue or DEFAULT_QUEUE
    with Journal(_journal_path(args), lazy=True) as journal:
        try:
            run_id = submit(
                sop,
                params,
                registry=registry,
                journal=journal,
                queue=queue,
                handlers=list(args.handlers),
                performer=args.performer,
            )
        except PlanRefused as exc:
            return _refused(sop.name, exc)
        row = journal.run(run_id)
        status = current_status(journal, row) if row is not None else "queued"
    if args.json:
        emit_json({"run_id": run_id, "status": status, "queue": queue})
    else:
        print(run_id)
    if not args.quiet:
        print(
            f"sop: run {run_id} {status} (queue '{queue}'); follow it with:"
            f" sop inspect {run_id} --follow",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_resume(args: argparse.Namespace) -> int:
    from engine.binding.packs import load_handlers
    from engine.execution.decide import confirm
    from engine.execution.runner import resume, sop_for_resume

    found, _ = recorded_run(args)  # the run id, a prefix resolved
    found.close()
    with Journal(_journal_path(args)) as journal:
        started = journal.verified_run(args.run_id)  # before importing the modules it names
        registry = load_handlers([*started.handlers, *args.handlers], sops=(started.sop,))
        params = None
        if raw_params(args):  # the exact values of parameters redaction altered
            params = parse_params(args, sop_for_resume(started), complete=False)
        try:
            sop = sop_for_resume(started)  # names the lines progress shows
        except SopError:
            sop = None  # resume says why, in its own words
    display = display_for(sop, quiet=args.quiet)
    with ObservedJournal(_journal_path(args), display) as journal:
        try:
            if args.confirm is not None:  # a submitted run goes on on a worker
                result = confirm(
                    args.run_id,
                    args.confirm,
                    params=params,
                    registry=registry,
                    journal=journal,
                    by=args.as_,
                )
            else:
                result = resume(
                    args.run_id, params=params, registry=registry, journal=journal, by=args.as_
                )
        except PlanRefused as exc:
            return _refused(started.sop, exc)
        finally:
            display.close()
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
        result = report(args.run_id, [item], by=args.as_, registry=registry, journal=journal)
        code = emit_result(result, args)
    if result.status is RunStatus.WAITING:
        still = ", ".join(f"{t['file']}:{t['line']}" for t in result.tasks)
        print(f"sop: recorded; run {result.run_id} still waits on: {still}", file=sys.stderr)
        return EXIT_PAUSED
    return code


def _since(text: str) -> datetime:
    """``--since``: ``90m``, ``2h``, ``3d``, ``1w`` ago, or an ISO date/time (UTC if naive)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    amount, unit = text[:-1], text[-1:].lower()
    if unit in units and amount.isascii() and amount.isdigit():
        try:
            return datetime.now(UTC) - timedelta(seconds=int(amount) * units[unit])
        except OverflowError:
            raise UsageError(f"--since {text!r}: too far back") from None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--since {text!r}: expected an age (30m, 2h, 3d, 1w) or an ISO date (2026-01-31)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(row: RunRow) -> str:
    """Started to last update (to now while running)."""
    start = instant(row.started)
    end = time.time() if row.status == RunStatus.RUNNING.value else instant(row.updated)
    took = max(0.0, end - start)
    if took < 60:
        return f"{took:.2f}s"
    minutes, secs = divmod(int(took), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _selected_runs(args: argparse.Namespace, journal: Journal) -> list[RunRow]:
    """Newest first, filtered by ``--sop``, ``--status``, ``--since``; at most ``--limit``."""
    since = _since(args.since).timestamp() if args.since else None
    limit = 1 if args.last else args.limit
    if limit < 1:
        raise UsageError(f"--limit {limit}: expected 1 or more")
    if not (args.sop or args.status or since is not None):
        return journal.runs(limit)
    rows = []
    for row in journal.runs():
        if args.sop and row.sop != args.sop:
            continue
        if args.status and current_status(journal, row) != args.status:
            continue
        if since is not None and instant(row.started) < since:
            break  # newest first: the rest are older still
        rows.append(row)
        if len(rows) == limit:
            break
    return rows


def cmd_runs(args: argparse.Namespace) -> int:
    journal = _existing_journal(args)
    rows: list[RunRow] = []
    if journal is not None:
        with journal:
            rows = current(journal, _selected_runs(args, journal))
    if args.last:
        if not rows:
            raise UsageError(f"no runs match (journal {_journal_path(args)})")
        args.run_id = rows[0].run_id
        return cmd_inspect(args)
    if args.json:
        emit_json([_run_dict(row, args) for row in rows])
        return EXIT_OK
    _health(args)
    if not rows:
        print(f"no runs (journal {_journal_path(args)})")
        return EXIT_OK
    print(f"{'RUN':<32}  {'STATUS':<11}  {'SOP':<24}  {'VERSION':<8}  {'DURATION':>9}  STARTED")
    for row in rows:
        child = f"  (child of {row.parent_run_id})" if row.parent_run_id else ""
        print(
            f"{row.run_id:<32}  {row.status:<11}  {row.sop:<24}  "
            f"{row.version or '-':<8}  {_duration(row):>9}  {row.started}{child}"
        )
    for row in rows:
        if row.status == INTERRUPTED:
            print(f"interrupted: {row.run_id} (its process is gone); continue it with:")
            print(f"  {_continue_command(row.run_id, args)}")
    return EXIT_OK


def _health(args: argparse.Namespace) -> None:
    """The queue's depth and the workers' heartbeats, when ``SOP_BROKER`` is set."""
    from engine.distributed.settings import broker_configured

    if not broker_configured():  # no broker, no line, no cost
        return
    from engine.distributed.health import health

    found = health(_journal_path(args))
    if found is not None:
        for line in found.lines():
            print(line)


def _run_dict(row: RunRow, args: argparse.Namespace) -> dict[str, object]:
    """``row`` as JSON; an interrupted run carries the command that continues it."""
    data: dict[str, object] = row.to_dict()
    if row.status == INTERRUPTED:
        data["resume_command"] = _continue_command(row.run_id, args)
    return data


def _describer(journal: Journal, run_id: str, result: RunResult | None) -> Describer:
    """Lines by action id: from the recorded result, else (a run still going) its SOP."""
    if result is not None:
        return Describer(a.to_dict() for a in result.actions)
    from engine.execution.runner import sop_for_resume

    started = journal.started(run_id)
    try:
        sop = sop_for_resume(started) if started is not None else None
    except SopError:
        sop = None
    actions = sop.all_actions() if sop is not None else ()
    return Describer(
        {"id": a.id, "step": a.step, "line": a.line, "level": a.level.value, "text": a.text}
        for a in actions
    )


def _follow(args: argparse.Namespace, journal: Journal, row: RunRow) -> int:
    """``inspect --follow``: print the timeline as it grows until the run stops; its exit code."""
    from engine.storage.lease import holder_alive

    if not args.interval > 0:
        raise UsageError(f"--interval {args.interval}: expected a number of seconds > 0")
    start: float | None = None
    shown = 0
    describe = _describer(journal, row.run_id, None)
    print(f"run {row.run_id}: {row.sop} {row.version or ''}".rstrip() + " (following)")
    while True:
        current = journal.run(row.run_id)
        assert current is not None
        events = journal.events(row.run_id)
        for event in events[shown:]:
            start = instant(event.ts) if start is None else start
            for line in event_lines(event, start, describe):
                print(line, flush=True)
        shown = len(events)
        if current.status in STOPPED_EXIT:
            return STOPPED_EXIT[current.status]
        if current.status == RunStatus.QUEUED.value:  # submitted: a worker has not taken it yet
            time.sleep(args.interval)
            continue
        if current.status != RunStatus.RUNNING.value:
            print(f"run {row.run_id}: {current.status}")
            return EXIT_FAILED
        if not holder_alive(journal.lease(row.run_id), time.time()):  # its owner is gone...
            again = journal.run(row.run_id)
            if again is None or again.status != RunStatus.RUNNING.value:
                continue  # ...or it just ended (status and lease change in one commit)
            print(
                f"run {row.run_id}: interrupted (its process is gone); resume it with:"
                f" sop resume {row.run_id}"
            )
            return EXIT_FAILED
        time.sleep(args.interval)


def cmd_inspect(args: argparse.Namespace) -> int:
    journal, row = recorded_run(args)
    with journal:
        (row,) = current(journal, [row])
        if getattr(args, "follow", False):
            return _follow(args, journal, row)
        events = journal.events(args.run_id)
        started = journal.started(args.run_id)
        records = journal.records(args.run_id)
        children = [c.to_dict() for c in journal.children(args.run_id)]
        result = recorded_result(journal, args.run_id)
        describe = _describer(journal, args.run_id, result)
    params = started.params if started is not None else row.params  # the chained copy
    resume = {"resume_command": _continue_command(row.run_id, args)}
    if args.json:
        emit_json(
            {
                "run": {
                    **row.to_dict(),
                    "params": params,
                    "handlers": row.handlers,
                    **(resume if row.status == INTERRUPTED else {}),
                },
                "result": result.to_dict() if result else None,
                "events": [e.to_dict() for e in events],
                "records": records,
                "children": children,
                "timeline": timeline_json(events),
            }
        )
        return EXIT_OK
    print(f"run {row.run_id}: {row.sop} {row.version or ''} {row.status}")
    print(f"  started {row.started}, updated {row.updated}, took {_duration(row)}")
    if row.parent_run_id:
        print(f"  child of {row.parent_run_id}")
    print("params:")
    for key, value in params.items():
        print(f"  {key}: {_value(value)}")
    print("timeline:")
    start = instant(events[0].ts) if events else 0.0
    finished: set[str] = set()
    dangling = in_flight(events)
    for event in events:
        if event.type in ("action_finished", "action_pending") and event.action_id:
            finished.add(event.action_id)
        if event.seq in dangling:
            print(started_line(event, start, describe))
        for line in event_lines(event, start, describe):
            print(line)
    if result is not None:
        rest = not_run_lines((a.to_dict() for a in result.actions), finished)
        if rest:
            print("not run:")
            for line in rest:
                print(line)
        if result.pending:
            pending = result.to_dict(validate=False)["pending"]
            print(f"paused: {pending['message']}")
            print(
                f"  confirm before {pending['expires_at']} with:"
                f" sop resume {row.run_id} --confirm TOKEN"
            )
    if row.status == RunStatus.UNKNOWN.value:
        print(f"outcome unknown: reconcile it with: {resume['resume_command']}")
    if row.status == INTERRUPTED:
        print(f"interrupted: its process is gone; continue it with: {resume['resume_command']}")
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
    print(f"status: {row.status}")
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
        print(f"journal {journal.location}: intact")
        return EXIT_OK
    print(f"journal {journal.location}: broken: {problems[0]}", file=sys.stderr)
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
