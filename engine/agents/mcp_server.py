"""SOPs as agent tools: a live catalog, one transport-neutral dispatcher, and the MCP face.

:class:`SopService` answers every tool call (one tool per SOP plus ``list_sops``,
``describe_sop``, ``plan_sop``, ``confirm_run``, ``inspect_run``) with a
:class:`ToolOutcome`; it never raises for a bad call, so no input can take the
server down. :func:`serve` puts it behind the official MCP SDK over stdio; ``mcp``
is imported there and nowhere else in the engine.

Live reload: each request re-stats the SOP files the catalog finds and re-reads a
file whose mtime or size changed. An edit with lint errors is not served: the last
good version stays in service, and the errors are shown by ``list_sops`` /
``describe_sop`` and logged on stderr.

Limits: one call cannot stop the server. Tool work runs on worker threads, off the
event loop; a call that takes longer than ``SOP_MCP_CALL_SECONDS`` (default 120) comes
back as a tool error at once while its thread finishes in the background (a run it
started is journaled as usual); arguments over ``SOP_MCP_MAX_ARGUMENT_BYTES`` (JSON,
default 65,536) are refused unread; and at most ``MAX_RUNNING_CALLS`` calls run at
once, counting those past their limit, so a flood of slow calls gets "busy" errors
instead of threads without end.

Confirmation stays with a person unless the server was started with the agent
policy (``sop mcp --allow-agent-confirm`` or ``SOP_MCP_CONFIRM=agent``). Under the
default policy a paused run's token is never shown to the agent: it goes to the
server's stderr (the MCP host's log, read by the person running it) with the
command that confirms it. An agent that saw the token could confirm through any
other channel it has (a shell tool running ``sop resume``), so hiding it is what
makes the policy hold.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.agents import guided
from engine.agents.tools import (
    CONFIRM_RUN,
    DESCRIBE_SOP,
    INSPECT_RUN,
    LIST_SOPS,
    PLAN_SOP,
    REPORT_TASKS,
    ToolDef,
    assign_names,
    fixed_tools,
    run_result_schema,
    sop_description,
    sop_tool,
    tool_annotations,
)
from engine.binding.planner import plan
from engine.binding.registry import default_registry
from engine.errors import (
    BindingError,
    LintRefused,
    ParameterError,
    PlanRefused,
    SopError,
    UsageError,
)
from engine.execution.decide import confirm as confirm_paused
from engine.execution.runner import recorded_result, run
from engine.language.catalog import SUFFIX, search_dirs
from engine.language.lint import errors as lint_errors
from engine.language.params import schema_for, validate
from engine.language.parser import parse
from engine.language.suggest import did_you_mean
from engine.model import ActionKind, Sop
from engine.storage.journal import Journal
from engine.storage.location import chosen, database_url, shown
from engine.storage.run_status import INTERRUPTED, current

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.execution.runner import RunResult

CALL_SECONDS_ENV = "SOP_MCP_CALL_SECONDS"
ARGUMENT_BYTES_ENV = "SOP_MCP_MAX_ARGUMENT_BYTES"
MAX_RUNNING_CALLS = 8
POLICY_HUMAN = "human"
POLICY_AGENT = "agent"
POLICY_ENV = "SOP_MCP_CONFIRM"
SERVER_NAME = "sop-engine"

Log = Callable[[str], None]


def stderr_logger(prefix: str = "sop mcp") -> Log:
    """Lines on stderr: the MCP host's log, never the protocol stream."""

    def log(message: str) -> None:
        print(f"{prefix}: {message}", file=sys.stderr, flush=True)

    return log


stderr_log = stderr_logger()


def confirm_policy(allow_agent: bool = False, env: Mapping[str, str] | None = None) -> str:
    """``agent`` if the flag or ``SOP_MCP_CONFIRM=agent`` says so, else ``human``."""
    value = (os.environ if env is None else env).get(POLICY_ENV, "").strip().lower()
    if value not in ("", POLICY_HUMAN, POLICY_AGENT):
        raise UsageError(f"{POLICY_ENV}={value!r}: expected '{POLICY_HUMAN}' or '{POLICY_AGENT}'")
    return POLICY_AGENT if allow_agent or value == POLICY_AGENT else POLICY_HUMAN


@dataclass(frozen=True)
class CallLimits:
    """What one tool call may take: wall time, argument size, calls running at once."""

    seconds: float = 120.0
    argument_bytes: int = 65_536
    running: int = MAX_RUNNING_CALLS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CallLimits:
        """The defaults, with ``SOP_MCP_CALL_SECONDS`` / ``SOP_MCP_MAX_ARGUMENT_BYTES``."""
        environ = os.environ if env is None else env
        seconds, size = cls.seconds, cls.argument_bytes
        raw = environ.get(CALL_SECONDS_ENV, "").strip()
        if raw:
            try:
                seconds = float(raw)
            except ValueError:
                seconds = -1.0
            if not 0 < seconds < 1e9:  # also refuses nan and inf
                raise UsageError(f"{CALL_SECONDS_ENV}={raw!r}: expected a positive number")
        raw = environ.get(ARGUMENT_BYTES_ENV, "").strip()
        if raw:
            size = int(raw) if raw.isascii() and raw.isdigit() else 0
            if size <= 0:
                raise UsageError(f"{ARGUMENT_BYTES_ENV}={raw!r}: expected a positive integer")
        return cls(seconds=seconds, argument_bytes=size)


def _argument_bytes(arguments: Any) -> int | None:
    """The size of ``arguments`` as JSON (UTF-8); None when it cannot be written as JSON."""
    try:
        text = json.dumps(arguments, ensure_ascii=False, default=str)
    except (ValueError, TypeError, RecursionError):
        return None
    return len(text.encode("utf-8", "surrogatepass"))


def _shown(name: str) -> str:
    return name if len(name) <= 80 else name[:77] + "..."


# --------------------------------------------------------------------------- live catalog


@dataclass
class Served:
    """One SOP file as the server sees it: the version in service and the file's state."""

    name: str
    path: Path
    stamp: tuple[int, int]  # (mtime_ns, size) of the file when last read
    sop: Sop | None = None  # last good version (no lint errors); None if never good
    schema: dict[str, Any] | None = None  # its parameter schema
    errors: tuple[str, ...] = ()  # lint errors of the file on disk, when it is broken

    @property
    def stale(self) -> bool:
        """The file on disk is broken and an older good version is being served."""
        return bool(self.errors) and self.sop is not None


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


class LiveCatalog:
    """The catalog's SOPs, parsed once, re-read when a file changes, last good kept."""

    def __init__(self, log: Log = stderr_log) -> None:
        self._log = log
        self._served: dict[str, Served] = {}
        self._lock = threading.Lock()
        #: Bumped whenever the SOPs in service change (added, removed, a good edit loaded).
        self.generation = 0

    def refresh(self) -> list[Served]:
        """Bring every entry up to date with the disk; returns them sorted by name."""
        with self._lock:
            found = self._scan()
            for name in list(self._served):
                if name not in found:
                    self._log(f"{name}: file gone, no longer served")
                    if self._served.pop(name).sop is not None:
                        self.generation += 1
            for name, path in found.items():
                stamp = _stamp(path)
                current = self._served.get(name)
                if stamp is None:
                    continue
                if current is None or current.stamp != stamp or current.path != path:
                    fresh = self._read(name, path, stamp, current)
                    self._served[name] = fresh
                    if fresh.sop is not (current.sop if current else None):
                        self.generation += 1
            return [self._served[name] for name in sorted(self._served)]

    def _scan(self) -> dict[str, Path]:
        """NAME -> file, by the catalog's rule: search order, shallowest then by path, first wins.

        Not ``catalog.entries()``: that parses every file on each call and stops at the first
        unreadable one, and one bad file must not hide the others from a long-lived server.
        """

        found: dict[str, Path] = {}
        for directory in search_dirs():
            try:
                files = [p for p in directory.rglob(f"*{SUFFIX}") if p.is_file()]
            except OSError as exc:
                self._log(f"{directory}: cannot list: {exc.strerror or exc}")
                continue
            for path in sorted(files, key=lambda p: (len(p.parts), str(p))):
                found.setdefault(path.name[: -len(SUFFIX)], path)
        return found

    def _read(self, name: str, path: Path, stamp: tuple[int, int], old: Served | None) -> Served:

        keep = old if old is not None and old.path == path else None
        try:
            sop = parse(path.read_bytes(), path=str(path))
            errors = lint_errors(sop)
            schema = None if errors else schema_for(sop)
        except OSError as exc:
            errors, schema, sop = [f"{path}: cannot read: {exc.strerror or exc}"], None, None
        except Exception as exc:  # a parser/lint bug must not stop the server
            errors, schema, sop = [f"{path}: {type(exc).__name__}: {exc}"], None, None
        if errors or sop is None or schema is None:
            if keep is not None and keep.sop is not None:
                self._log(
                    f"{path}: {len(errors)} lint error(s); still serving the last good version "
                    f"({keep.sop.content_hash[:12]}): {errors[0]}"
                )
            else:
                self._log(f"{path}: {len(errors)} lint error(s); not served: {errors[0]}")
            return Served(
                name=name,
                path=path,
                stamp=stamp,
                sop=keep.sop if keep else None,
                schema=keep.schema if keep else None,
                errors=tuple(errors),
            )
        if old is not None:
            self._log(f"{path}: reloaded ({sop.content_hash[:12]})")
        return Served(name=name, path=path, stamp=stamp, sop=sop, schema=schema)


# --------------------------------------------------------------------------- dispatch


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call returns, in any framework: JSON data, a text rendering, error flag."""

    structured: dict[str, Any]
    text: str
    is_error: bool = False


_NOT_OBJECT = "(arguments): not an object"


class UnknownTool(LookupError):
    """No tool by that name (a protocol error, not a tool error)."""


def _error(message: str, problems: list[str] | None = None) -> ToolOutcome:
    data: dict[str, Any] = {"error": message}
    text = message
    if problems:
        data["problems"] = problems
        text += "\n" + "\n".join(f"- {p}" for p in problems)
    return ToolOutcome(structured=data, text=text, is_error=True)


def _ok(data: dict[str, Any], summary: str | None = None) -> ToolOutcome:
    rendered = json.dumps(data, indent=2, default=str)
    return ToolOutcome(structured=data, text=f"{summary}\n{rendered}" if summary else rendered)


def schema_problems(schema: Mapping[str, Any], value: Any) -> list[str]:
    """Every way ``value`` fails ``schema``, as 'path: message' lines."""
    from jsonschema import Draft202012Validator

    problems = []
    for err in sorted(
        Draft202012Validator(schema).iter_errors(value), key=lambda e: list(map(str, e.path))
    ):
        where = ".".join(str(p) for p in err.absolute_path) or "(arguments)"
        problems.append(f"{where}: {err.message}")
    return problems


@dataclass
class SopService:
    """Answers tool calls for the SOPs the catalog finds; transport-neutral and crash-proof."""

    registry: Registry | None = None
    journal: str | None = None  # path; None -> the default (engine.storage.location)
    policy: str = POLICY_HUMAN
    handlers: tuple[str, ...] = ()  # handler modules, recorded with each run for `sop resume`
    log: Log = stderr_log
    limits: CallLimits = field(default_factory=CallLimits)
    catalog: LiveCatalog = field(default=None)  # type: ignore[assignment]
    performer: str | None = None  # --performer: for SOPs that name none

    def __post_init__(self) -> None:
        if self.policy not in (POLICY_HUMAN, POLICY_AGENT):
            raise UsageError(f"unknown confirmation policy {self.policy!r}")
        if self.catalog is None:
            self.catalog = LiveCatalog(self.log)
        self._output_schema = run_result_schema()
        self._names_notes: list[str] = []

    # ----------------------------------------------------------------- listing

    def _snapshot(self) -> tuple[list[Served], dict[str, str]]:
        served = self.catalog.refresh()
        names, notes = assign_names(s.name for s in served if s.sop is not None)
        if notes != self._names_notes:
            for note in notes:
                self.log(note)
            self._names_notes = notes
        return served, names

    def tools(self) -> list[ToolDef]:
        """Fixed tools, then one tool per SOP in service."""
        served, names = self._snapshot()
        result = list(fixed_tools(self._output_schema))
        for item in served:
            if item.sop is not None and item.schema is not None:
                result.append(
                    sop_tool(
                        item.sop,
                        item.schema,
                        name=names[item.name],
                        output_schema=self._output_schema,
                    )
                )
        return result

    def prompts(self) -> list[tuple[str, str, str]]:
        """``(name, title, description)`` of each SOP in service, as a prompt."""
        served, _ = self._snapshot()

        return [
            (s.name, s.sop.title or s.name, sop_description(s.sop))
            for s in served
            if s.sop is not None
        ]

    def prompt(self, name: str, user_input: str = "") -> tuple[str, str] | None:
        """``(description, text)`` of the SOP prompt ``name`` (the SOP framed for an agent,
        with the user's input); None if unknown."""
        served, names = self._snapshot()
        for item in served:
            if item.name == name and item.sop is not None:
                text = guided.prompt_text(item.sop, names.get(item.name), user_input)
                return (item.sop.title or item.name, text)
        return None

    # ----------------------------------------------------------------- calls

    def call(self, name: str, arguments: Mapping[str, Any] | None) -> ToolOutcome:
        """Run tool ``name``; every failure comes back as an error outcome, never raised.

        Raises only :class:`UnknownTool`.
        """
        args: Any = {} if arguments is None else arguments
        size = _argument_bytes(args)
        if size is None or size > self.limits.argument_bytes:
            what = "cannot be read as JSON" if size is None else f"are {size:,} bytes"
            return _error(
                f"invalid arguments for {_shown(name)}: they {what}; the limit is "
                f"{self.limits.argument_bytes:,} bytes of JSON ({ARGUMENT_BYTES_ENV})"
            )
        fixed = {
            LIST_SOPS: self._list_sops,
            DESCRIBE_SOP: self._describe_sop,
            PLAN_SOP: self._plan_sop,
            CONFIRM_RUN: self._confirm_run,
            INSPECT_RUN: self._inspect_run,
            REPORT_TASKS: self._report_tasks,
        }
        try:
            if name in fixed:
                tool = next(t for t in fixed_tools() if t.name == name)
                problems = schema_problems(tool.input_schema, args)
                if problems:
                    return _error(f"invalid arguments for {name}", problems)
                return fixed[name](dict(args))
            served, names = self._snapshot()
            for item in served:
                if names.get(item.name) == name and item.sop is not None:
                    if not isinstance(args, Mapping):
                        return _error(
                            f"invalid parameters for {name}", ["(arguments): not an object"]
                        )
                    return self._run_sop(name, item.sop, dict(args))
        except ParameterError as exc:
            return _error(f"invalid parameters for {name}", list(exc.problems))
        except PlanRefused as exc:
            return _error(f"{name}: refusing to run, unbound required lines", list(exc.lines))
        except LintRefused as exc:
            return _error(f"{name}: refusing to run, lint errors", list(exc.lines))
        except SopError as exc:
            return _error(f"{name}: {exc}")
        except Exception as exc:  # the last line of defence: report, keep serving
            self.log(f"{name}: internal error: {type(exc).__name__}: {exc}")
            return _error(f"{name}: internal error: {type(exc).__name__}: {exc}")
        served, names = self._snapshot()
        hint = did_you_mean(name, [*fixed, *names.values()])
        raise UnknownTool(
            f"unknown tool {_shown(name)!r}{hint}; call {LIST_SOPS} to see what is served"
        )

    def _find(self, wanted: str) -> Served:
        served, names = self._snapshot()
        for item in served:
            if wanted in (item.name, names.get(item.name)):
                return item
        known = ", ".join(s.name for s in served) or "none"
        hint = did_you_mean(wanted, [s.name for s in served])
        raise UsageError(f"unknown SOP {wanted!r}{hint} (served: {known})")

    def _in_service(self, wanted: str) -> Sop:
        item = self._find(wanted)
        if item.sop is None:
            raise UsageError(f"SOP {item.name!r} is not served: " + "; ".join(item.errors))
        return item.sop

    def _list_sops(self, _args: dict[str, Any]) -> ToolOutcome:
        served, names = self._snapshot()
        sops = [_entry(item, names.get(item.name)) for item in served]
        data: dict[str, Any] = {"sops": sops}
        if self._names_notes:
            data["notes"] = list(self._names_notes)
        return _ok(data)

    def _describe_sop(self, args: dict[str, Any]) -> ToolOutcome:
        item = self._find(str(args["name"]))
        _, names = self._snapshot()
        data = _entry(item, names.get(item.name))
        if item.sop is not None:
            data.update(describe(item.sop, self._registry(), item.schema))
        return _ok(data)

    def _plan_sop(self, args: dict[str, Any]) -> ToolOutcome:

        sop = self._in_service(str(args["name"]))
        params = args.get("params") or {}
        result = plan(sop, params, registry=self._registry(), performer=self.performer)
        return _ok(result.to_dict())

    def _run_sop(self, tool: str, sop: Sop, params: dict[str, Any]) -> ToolOutcome:

        validate(sop, params)  # all problems at once, before anything can have a side effect
        with self._journal() as journal:
            result = run(
                sop,
                params,
                registry=self._registry(),
                journal=journal,
                handlers=list(self.handlers),
                performer=self.performer,
            )
        return self._run_outcome(tool, result)

    def _report_tasks(self, args: dict[str, Any]) -> ToolOutcome:
        result = guided.report_tasks(args, registry=self._registry(), journal=self._journal)
        return self._run_outcome(REPORT_TASKS, result)

    def _confirm_run(self, args: dict[str, Any]) -> ToolOutcome:
        run_id = str(args["run_id"])
        if self.policy != POLICY_AGENT:
            return _error(
                f"{CONFIRM_RUN} refused: this server's confirmation policy is '{POLICY_HUMAN}', "
                f"so an agent cannot confirm run {run_id}. Ask a person to confirm it: "
                f"`{self.resume_command(run_id)}` (the token is in the server's log). "
                f"To let agents confirm, start the server with `sop mcp --allow-agent-confirm` "
                f"or {POLICY_ENV}={POLICY_AGENT}."
            )

        with self._journal() as journal:
            result = confirm_paused(  # a submitted run goes on on a worker
                run_id,
                str(args["token"]),
                registry=self._registry(),
                journal=journal,
                by="agent (MCP confirm_run)",  # journaled: not a person at a terminal
            )
        return self._run_outcome(CONFIRM_RUN, result)

    def _inspect_run(self, args: dict[str, Any]) -> ToolOutcome:

        run_id = str(args["run_id"])
        with self._journal() as journal:
            row = journal.run(run_id)
            if row is None:
                raise UsageError(f"unknown run {run_id!r} (journal {journal.location})")
            (row,) = current(journal, [row])  # running with its process gone: interrupted
            recorded = recorded_result(journal, run_id)
            children = [child.to_dict() for child in journal.children(run_id)]
        result = recorded.to_dict() if recorded is not None else None
        if result is not None:
            withhold_token(result)  # the journal keeps only its hash anyway
        data = {"run": row.to_dict(), "result": result, "children": children}
        summary = f"run {run_id}: {row.status}"
        if row.status == "paused":
            summary += f" - waiting for a person: `{self.resume_command(run_id)}`"
        elif row.status == INTERRUPTED:
            command = f"sop resume {run_id} --journal {self.journal_path()}"
            summary += f" - its process is gone; a person continues it: `{command}`"
        elif result is not None and row.status == "waiting":
            summary += guided.waiting_summary(result)
        return _ok(data, summary)

    # ----------------------------------------------------------------- helpers

    def _registry(self) -> Registry:
        if self.registry is None:
            return default_registry
        return self.registry

    def _journal(self) -> Journal:

        return Journal(self.journal)

    def journal_path(self) -> str:
        """The journal as a command given from any folder names it (a URL without its password)."""
        where = chosen(self.journal)
        url = database_url(where)
        return shown(url) if url is not None else str(Path(where).resolve())

    def resume_command(self, run_id: str, token: str = "TOKEN") -> str:
        """The command a person runs to confirm ``run_id`` (any working directory)."""
        return f"sop resume {run_id} --confirm {token} --journal {self.journal_path()}"

    def _run_outcome(self, tool: str, result: RunResult) -> ToolOutcome:
        data = result.to_dict()
        status = str(data.get("status", ""))
        run_id = str(data.get("run_id", ""))
        summary = f"run {run_id}: {status}"
        pending = data.get("pending")
        if status == "paused" and isinstance(pending, dict):
            message = str(pending.get("message") or "confirmation required").rstrip(". ")
            token = pending.get("token")
            if self.policy == POLICY_AGENT:
                summary += (
                    f" - {message}. Confirm with {CONFIRM_RUN}(run_id={run_id!r}, token=...) "
                    "using pending.token."
                )
            else:
                withhold_token(data)
                summary += (
                    f" - {message}. A person must confirm this run: "
                    f"`{self.resume_command(run_id)}`; the token is in the server's log, "
                    "not shown to agents."
                )
                if isinstance(token, str) and token:
                    self.log(
                        f"run {run_id} ({tool}) paused: {message}. "
                        f"To confirm: {self.resume_command(run_id, token)}"
                    )
        elif status == "waiting":
            summary += guided.waiting_summary(data)
        elif data.get("errors"):
            summary += " - " + "; ".join(str(e) for e in data["errors"])
        if status == "unknown":  # never to be retried by running it again
            summary += (
                ". Do not run it again: a person reconciles it with "
                f"`sop resume {run_id} --journal {self.journal_path()}`"
            )
        outcome = _ok(data, summary)
        failed = status in ("failed", "unknown", "blocked")
        return ToolOutcome(outcome.structured, outcome.text, is_error=failed)


def withhold_token(run: dict[str, Any]) -> None:
    """Blank the confirmation token in a run result shown to an agent (the shape stays valid)."""
    pending = run.get("pending")
    if isinstance(pending, dict) and "token" in pending:
        pending["token"] = None


def _entry(item: Served, tool: str | None) -> dict[str, Any]:
    """The list_sops row for one SOP file."""
    sop = item.sop
    row: dict[str, Any] = {
        "name": item.name,
        "tool": tool if sop is not None else None,
        "prompt": item.name if sop is not None else None,
        "title": sop.title if sop else None,
        "version": sop.version if sop else None,
        "status": sop.metadata.get("Status") if sop else None,
        "path": str(item.path.resolve()),
        "content_hash": sop.content_hash if sop else None,
        "serving": "last_good" if item.stale else ("current" if sop is not None else "none"),
    }
    if item.errors:
        row["lint_errors"] = list(item.errors)
    return row


def describe(sop: Sop, registry: Registry, schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Steps, actions, levels and bindings of ``sop`` (what describe_sop shows)."""

    def line(action: Any) -> dict[str, Any]:
        kind = ActionKind.CHECK if action.kind is ActionKind.CHECK else ActionKind.ACTION
        binding: dict[str, Any] | None
        try:
            match = registry.match(action, sop=sop.name, step=action.step, kind=kind)
        except BindingError as exc:
            binding = {"error": str(exc)}
        else:
            binding = (
                None
                if match is None
                else {
                    "handler": match.handler.name,
                    "where": f"{match.handler.file}:{match.handler.line}",
                    "captures": {k: str(v) for k, v in match.captures.items()},
                }
            )
        row: dict[str, Any] = {
            "id": action.id,
            "line": action.line,
            "kind": action.kind.value,
            "level": action.level.value,
            "text": action.text,
            "block": action.block,
            "bound": binding is not None and "error" not in binding,
            "handler": binding,
        }
        if action.branch:
            row["branch"] = action.branch
        return row

    steps: list[dict[str, Any]] = []
    for step in sop.steps:
        steps.append(
            {
                "number": step.number,
                "title": step.title,
                "purpose": step.purpose,
                "branches": [
                    {"label": b.label, "param": b.param, "value": b.value} for b in step.branches
                ],
                "actions": [
                    line(a) for a in sorted((*step.actions, *step.checks), key=lambda a: a.line)
                ],
            }
        )
    guards = [line(g) for g in sop.guards]
    lines = [*guards, *(a for s in steps for a in s["actions"])]
    unbound_required = [
        r["id"] for r in lines if not r["bound"] and r["level"] in ("MUST", "MUST NOT")
    ]
    return {
        "overview": sop.overview.strip(),
        "prerequisites": list(sop.prerequisites),
        "parameters": dict(schema) if schema is not None else None,
        "guards": guards,
        "steps": steps,
        "unbound_required": unbound_required,
    }


# --------------------------------------------------------------------------- MCP face


class CallGate:
    """At most ``limit`` tool calls on threads at once, counting calls past their time limit.

    A thread cannot be stopped, so a call that outlives its limit keeps its slot until
    its thread ends: the slot is handed back by whichever side sees the call end last
    (the caller for a call that finished or never started, the thread for one abandoned).
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._lock = threading.Lock()

    def take(self) -> dict[str, str] | None:
        """A ticket for one call, or None when every slot is in use."""
        with self._lock:
            if self._free <= 0:
                return None
            self._free -= 1
        return {"phase": "queued"}

    def wrap(self, ticket: dict[str, str], work: Callable[[], ToolOutcome]) -> ToolOutcome | None:
        """Run ``work`` on the worker thread unless the caller already gave up on it."""
        with self._lock:
            if ticket["phase"] == "dropped":
                return None
            ticket["phase"] = "running"
        try:
            return work()
        finally:
            with self._lock:
                abandoned = ticket["phase"] == "abandoned"
                ticket["phase"] = "done"
                if abandoned:
                    self._free += 1

    def settle(self, ticket: dict[str, str]) -> None:
        """The caller is done waiting: free the slot now unless the thread still runs."""
        with self._lock:
            if ticket["phase"] == "running":
                ticket["phase"] = "abandoned"  # the thread frees the slot when it ends
                return
            if ticket["phase"] == "queued":
                ticket["phase"] = "dropped"
            self._free += 1


INSTRUCTIONS = (
    "Each tool named after an SOP runs that Standard Operating Procedure with validated "
    "parameters and returns the run result. Call plan_sop first for a dry run, describe_sop "
    "to see its steps and bindings. A run that needs confirmation comes back paused; unless "
    "this server allows agents to confirm, a person confirms it with `sop resume`. A run "
    "that waits for its performer lists `tasks`: do them and report with report_tasks."
)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sop-engine")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        return "0"


def build_server(service: SopService) -> Any:
    """The MCP lowlevel ``Server`` over ``service`` (tools + one prompt per SOP)."""
    import anyio.to_thread
    from mcp import types
    from mcp.server.lowlevel import Server
    from mcp.shared.exceptions import MCPError
    from mcp.types.version import HANDSHAKE_PROTOCOL_VERSIONS

    invalid_params = -32602  # JSON-RPC "Invalid params": unknown tool / prompt
    announced: list[int] = []  # the catalog generation the client last heard of

    async def announce(ctx: Any) -> None:
        """Tell a handshake-era client its tool and prompt lists changed (after a reload).

        2026-07-28 clients hear of changes only through subscriptions/listen, which this
        server does not serve; they re-list (the listing is never marked cacheable).
        """
        generation = service.catalog.generation
        if not announced:
            announced.append(generation)
            return
        if generation == announced[0]:
            return
        announced[0] = generation
        if ctx.protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS:
            return
        try:
            await ctx.session.send_tool_list_changed()
            await ctx.session.send_prompt_list_changed()
        except Exception as exc:  # a notification is a courtesy; never fail the request for it
            service.log(f"could not send list_changed: {type(exc).__name__}: {exc}")

    def as_tool(tool: ToolDef) -> types.Tool:

        hints = tool_annotations(tool)
        return types.Tool(
            name=tool.name,
            title=tool.title,
            description=tool.description,
            input_schema=tool.input_schema,
            output_schema=tool.output_schema,
            annotations=types.ToolAnnotations(
                title=tool.title,
                read_only_hint=hints.get("readOnlyHint"),
                destructive_hint=hints.get("destructiveHint"),
                open_world_hint=hints.get("openWorldHint"),
            ),
        )

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        tools = await anyio.to_thread.run_sync(service.tools)
        await announce(ctx)
        return types.ListToolsResult(tools=[as_tool(t) for t in tools])

    limits = service.limits
    gate = CallGate(limits.running)

    async def bounded_call(name: str, arguments: Any) -> ToolOutcome:
        """``service.call`` on a worker thread, answered within ``limits.seconds``."""
        ticket = gate.take()
        if ticket is None:
            return _error(
                f"{_shown(name)}: the server is busy ({limits.running} calls still running, "
                "some past their time limit); try again shortly"
            )
        outcome: ToolOutcome | None = None
        try:
            with anyio.move_on_after(limits.seconds):
                outcome = await anyio.to_thread.run_sync(
                    gate.wrap, ticket, lambda: service.call(name, arguments), abandon_on_cancel=True
                )
        finally:
            gate.settle(ticket)
        if outcome is None:
            service.log(f"{_shown(name)}: no answer within {limits.seconds:g} s; left running")
            return _error(
                f"{_shown(name)}: no answer within {limits.seconds:g} s ({CALL_SECONDS_ENV}); "
                "the call goes on in the background and any run it started is journaled: "
                f"see `sop runs --journal {service.journal_path()}` or {INSPECT_RUN}"
            )
        return outcome

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            outcome = await bounded_call(params.name, params.arguments)
        except UnknownTool as exc:
            raise MCPError(code=invalid_params, message=str(exc)) from None
        finally:
            await announce(ctx)
        return types.CallToolResult(
            content=[types.TextContent(text=outcome.text)],
            structured_content=outcome.structured,
            is_error=outcome.is_error,
        )

    async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
        prompts = await anyio.to_thread.run_sync(service.prompts)
        await announce(ctx)
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=name,
                    title=title,
                    description=description,
                    arguments=[
                        types.PromptArgument(
                            name=guided.USER_INPUT,
                            description="what the user asks for: parameters and context",
                            required=False,
                        )
                    ],
                )
                for name, title, description in prompts
            ]
        )

    async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        user_input = str((params.arguments or {}).get(guided.USER_INPUT) or "")
        found = await anyio.to_thread.run_sync(service.prompt, params.name, user_input)
        if found is None:
            raise MCPError(code=invalid_params, message=f"unknown prompt {params.name!r}")
        description, text = found
        return types.GetPromptResult(
            description=description,
            messages=[types.PromptMessage(role="user", content=types.TextContent(text=text))],
        )

    return Server(
        SERVER_NAME,
        version=_version(),
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


def serve(service: SopService) -> None:
    """Serve ``service`` over stdio until the client closes stdin."""
    import anyio
    from mcp.server.stdio import stdio_server

    server = build_server(service)

    async def main() -> None:
        from mcp.server.lowlevel import NotificationOptions

        options = server.create_initialization_options(
            NotificationOptions(tools_changed=True, prompts_changed=True)
        )
        streams: Any = stdio_server()  # the SDK leaves this context manager unannotated
        async with streams as (read_stream, write_stream):
            await server.run(read_stream, write_stream, options)

    anyio.run(main)
