"""The ``sop`` command line: argument parsing, dispatch, exit codes, one-line errors.

Each command lives in the module that owns its concept and is imported only when
invoked, so ``sop lint`` never pays for (or imports) what ``sop run`` needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from engine.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, use_sop_paths
from engine.cli.plugins import PluginCommand, plugin_commands
from engine.errors import SopError, UsageError

# command -> "module:function"; each function takes the parsed args, returns an exit code.
# Commands of installed distributions (``sop sandbox``) come from engine.cli.plugins.
COMMANDS: dict[str, str] = {
    "list": "engine.cli.author:cmd_list",
    "show": "engine.cli.author:cmd_show",
    "lint": "engine.cli.lint:cmd_lint",
    "graph": "engine.cli.graph:cmd_graph",
    "schema": "engine.cli.lint:cmd_schema",
    "plan": "engine.cli.bind:cmd_plan",
    "run": "engine.cli.run:cmd_run",
    "resume": "engine.cli.run:cmd_resume",
    "reject": "engine.cli.decide:cmd_reject",
    "cancel": "engine.cli.decide:cmd_cancel",
    "ui": "engine.cli.ui:cmd_ui",
    "runs": "engine.cli.run:cmd_runs",
    "inspect": "engine.cli.run:cmd_inspect",
    "journal": "engine.cli.run:cmd_journal",
    "coverage": "engine.cli.bind:cmd_coverage",
    "stub": "engine.cli.bind:cmd_stub",
    "test": "engine.cli.test:cmd_test",
    "mcp": "engine.cli.agent:cmd_mcp",
    "tools": "engine.cli.agent:cmd_tools",
    "export": "engine.cli.handoff:cmd_export",
    "rule": "engine.cli.handoff:cmd_rule",
    "report": "engine.cli.run:cmd_report",
    "worker": "engine.cli.worker:cmd_worker",
}


# optional packages -> the extra that installs them (pyproject.toml)
_EXTRAS = {
    "localstripe": "sandbox",
    "aiohttp": "sandbox",
    "mcp": "mcp",
    "starlette": "ui",
    "uvicorn": "ui",
    "celery": "workers",
    "kombu": "workers",
    "redis": "workers",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


#: The options every command takes, before or after its name. Given before it they
#: land in ``GLOBAL_PREFIX + dest`` (argparse lets a subcommand's defaults overwrite the
#: main parser's values for a shared dest) and ``_merge_globals`` combines them.
GLOBAL_PREFIX = "global_"
_GLOBALS = ("handlers", "journal", "debug", "sop_paths")


def _common(prefix: str = "") -> _Parser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--handlers",
        dest=prefix + "handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help="import MODULE to register its handlers (repeatable)",
    )
    common.add_argument(
        "--journal",
        dest=prefix + "journal",
        metavar="PATH",
        help="journal database (default: SOP_JOURNAL, else .sop/journal.db at the project root)",
    )
    common.add_argument(
        "--debug", dest=prefix + "debug", action="store_true", help="show tracebacks"
    )
    common.add_argument(
        "--sop-paths",
        dest=prefix + "sop_paths",
        action="append",
        default=[],
        metavar="A:B",
        help="also look for SOPs in these folders (after ./sops, before SOP_PATH)",
    )
    return common


def _merge_globals(args: argparse.Namespace) -> argparse.Namespace:
    """Global options given before the command name join those given after it.

    ``--handlers`` from both places add up (before first); ``--debug`` in either place
    is on; ``--journal`` may be given in either place, or in both with the same path:
    two different paths are a usage error, never a silent choice.
    """
    before = {name: vars(args).pop(GLOBAL_PREFIX + name) for name in _GLOBALS}
    args.handlers = [*before["handlers"], *args.handlers]
    args.sop_paths = [*before["sop_paths"], *args.sop_paths]
    args.debug = before["debug"] or args.debug
    if before["journal"] is not None:
        if args.journal is not None and args.journal != before["journal"]:
            raise UsageError(
                f"--journal given twice: {before['journal']!r} before the command and"
                f" {args.journal!r} after it; give one"
            )
        args.journal = before["journal"]
    return args


def _person(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--as",
        dest="as_",
        metavar="NAME",
        help=f"who {what} (journaled; default: the OS user)",
    )


DESCRIPTION = """\
Run Standard Operating Procedures written in markdown. Each MUST / SHOULD / MAY line
of an SOP is bound to a Python handler; a run refuses to start while a required line
has no handler, journals every step (resumable, each side effect exactly once) and
reports what it skipped and why."""

EPILOG = """\
exit codes: 0 success, 1 failed or refused, 2 usage or invalid parameters (nothing
ran), 3 paused for confirmation, 4 outcome unknown (reconcile with `sop resume`).
A unique prefix of a run id (4+ characters) is accepted wherever a run id is.
`sop COMMAND --help` describes each command."""

_JSON_HELP = "print JSON instead of text (machine-readable; see schemas/)"
_RUN_ID_HELP = "the run's id, or a unique prefix of it (4+ characters)"


class _Version(argparse.Action):
    """``--version``: reads the installed version only when asked (importlib.metadata costs
    every other command its start-up time)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the installed version")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            text = f"sop {version('sop-engine')}"
        except PackageNotFoundError:
            text = "sop (version unknown: not installed)"
        print(text)
        parser.exit()


def _params(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one parameter (repeatable); converted to the type the SOP declares",
    )
    p.add_argument("--params-file", metavar="FILE", help="YAML or JSON file of parameters")


def _progress(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print nothing but the result (no run id line, no progress on stderr)",
    )


def _performer(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--performer",
        choices=["agent", "person"],
        default=None,
        help="who performs the unbound lines of an SOP that names no **Performer**",
    )


class _NotInvoked(_Parser):
    """Stands in for every command but the one invoked: argparse never parses their
    arguments then, so they are not built (about 100 arguments over 22 commands, ~8 ms of
    every start-up; the `sop lint` cold start is a target, README "Speed")."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        return argparse.Action([], argparse.SUPPRESS)


def build_parser(
    plugins: Mapping[str, PluginCommand] | None = None, only: str | None = None
) -> argparse.ArgumentParser:
    """The ``sop`` parser; with ``only``, that command's arguments alone (``--help`` and
    an unknown command need them all: see :func:`_invoked`)."""
    common = _common()
    parser = _Parser(
        prog="sop",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common(GLOBAL_PREFIX)],
    )
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(
        title="commands",
        dest="command",
        required=True,
        parser_class=_Parser,
        metavar="command",
    )

    not_invoked = _NotInvoked(add_help=False)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        if only is not None and name != only:
            return not_invoked
        return sub.add_parser(name, help=help_text, description=help_text, parents=[common])

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help=_JSON_HELP)

    json_flag(add("list", "list the SOPs the catalog finds"))
    p = add("show", "show one SOP's parsed model")
    p.add_argument("name", metavar="NAME|PATH", help="an SOP name (see `sop list`) or a file")
    json_flag(p)
    p = add("lint", "diagnose SOP files")
    p.add_argument("paths", nargs="*", metavar="PATH", help="SOP files (default: every SOP found)")
    p.add_argument(
        "--format",
        choices=["text", "json", "github"],
        default="text",
        help="text (file:line:col: CODE), json, or GitHub annotations",
    )
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p = add("graph", "draw the step graph (with --run: coloured by a run's statuses)")
    p.add_argument("name", metavar="NAME", help="the SOP's name (see `sop list`)")
    p.add_argument(
        "--format",
        choices=["mermaid", "dot", "json", "svg", "png"],
        default="mermaid",
        help="svg and png are drawn by Graphviz's dot (Debian: graphviz)",
    )
    p.add_argument("--run", metavar="RUN_ID", help="colour every line by its status in this run")
    add("schema", "print the parameter JSON Schema").add_argument(
        "name", metavar="NAME", help="the SOP's name"
    )
    for name, help_text in (("plan", "bind without running"), ("run", "run an SOP")):
        p = add(name, help_text)
        p.add_argument("name", metavar="NAME", help="the SOP's name (see `sop list`)")
        _params(p)
        json_flag(p)
        _performer(p)
        if name == "run":
            p.add_argument(
                "--confirm",
                metavar="TOKEN",
                help="the token a paused run printed: confirm its pending operation",
            )
            _person(p, "confirms")
            _progress(p)
            p.add_argument(
                "--submit",
                action="store_true",
                help="journal the run and enqueue it for `sop worker` (SOP_BROKER); print its"
                " id at once",
            )
            p.add_argument(
                "--queue", metavar="Q", help="--submit: the workers' queue (default: sop)"
            )
    p = add("resume", "resume a paused or interrupted run")
    p.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    _params(p)  # the exact values of parameters redaction altered in the journal
    p.add_argument(
        "--confirm",
        metavar="TOKEN",
        help="the token the paused run printed: confirm its pending operation",
    )
    _person(p, "confirms")
    json_flag(p)
    _progress(p)
    p = add("reject", "decline a paused run's pending operation (it never executes)")
    p.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (journaled)")
    _person(p, "rejects")
    json_flag(p)
    p = add("cancel", "stop an unfinished run (a running one stops before its next action)")
    p.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    p.add_argument("--reason", metavar="TEXT", help="why (journaled)")
    _person(p, "cancels")
    json_flag(p)
    p = add("worker", "execute submitted runs: a Celery worker (broker: SOP_BROKER)")
    p.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="runs at once (default 1)"
    )
    p.add_argument(
        "--queue",
        metavar="Q",
        action="append",
        default=[],
        help="queue to take runs from (repeatable; default: sop)",
    )
    p.add_argument("--name", metavar="NAME", help="this worker's name (default: sop@HOST-PID)")
    p = add("ui", "a local web page for operators: SOPs, runs, approvals")
    p.add_argument("--port", type=int, default=8765, help="port on 127.0.0.1 (default 8765)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p = add("runs", "list recorded runs, newest first")
    p.add_argument("--sop", metavar="NAME", help="only runs of this SOP")
    p.add_argument(
        "--status",
        metavar="STATUS",
        help="only runs with this status (succeeded, failed, paused, running, unknown, ...)",
    )
    p.add_argument(
        "--since", metavar="AGE|DATE", help="only runs started since: 2h, 3d, 2026-01-31"
    )
    p.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (default 20)")
    p.add_argument("--last", action="store_true", help="inspect the newest (matching) run")
    json_flag(p)
    p = add("inspect", "show one recorded run as a timeline")
    p.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    json_flag(p)
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print the timeline as it grows until the run stops; exit with the run's code",
    )
    p.add_argument(
        "--interval", type=float, default=0.5, metavar="SECONDS", help="--follow: poll period"
    )
    p = add("journal", "journal maintenance")
    p.add_argument(
        "action",
        choices=["verify", "head"],
        help="verify: check the hash chain and tables; head: print the chain head",
    )
    p.add_argument("--head", metavar="SEQ:HASH", help="verify: the chain must still contain it")
    p = add("coverage", "SOP/handler coverage for CI")
    p.add_argument("names", nargs="*", metavar="NAME", help="SOPs to cover (default: all)")
    p.add_argument(
        "--format", choices=["text", "json", "junit"], default="text", help="report format"
    )
    p.add_argument("--strict", action="store_true", help="unbound SHOULD lines fail too")
    add("stub", "print handler skeletons for unbound lines").add_argument(
        "name", metavar="NAME", help="the SOP's name"
    )
    p = add("test", "run SOP Examples as tests")
    p.add_argument(
        "names", nargs="*", metavar="NAME", help="SOPs whose Examples run (default: all)"
    )
    p.add_argument(
        "-k",
        dest="select",
        metavar="PATTERN",
        help="only the examples whose name contains PATTERN (case ignored), as pytest -k",
    )
    p.add_argument(
        "-x", "--exitfirst", action="store_true", help="stop at the first failing example"
    )
    p = add("mcp", "serve SOPs as MCP tools over stdio")
    p.add_argument(
        "--allow-agent-confirm",
        action="store_true",
        help="let agents confirm paused runs (default: only a person, via sop resume)",
    )
    _performer(p)
    p = add("report", "report a performer's task of a waiting run")
    p.add_argument("run_id", metavar="RUN_ID", help=_RUN_ID_HELP)
    p.add_argument("task", metavar="TASK", help="the task's id (or file:line, or line)")
    outcome = p.add_mutually_exclusive_group(required=True)
    for flag, value in (("--done", "done"), ("--skip", "skipped"), ("--fail", "failed")):
        outcome.add_argument(
            flag, dest="outcome", action="store_const", const=value, help=f"the task is {value}"
        )
    p.add_argument("--note", default="", help="evidence (done), the reason (skip), or why")
    p.add_argument(
        "--as",
        "--by",
        dest="as_",
        metavar="NAME",
        help="who reports (journaled; default: the OS user)",
    )
    json_flag(p)
    p = add("tools", "print tool definitions for agent frameworks")
    p.add_argument(
        "--format",
        choices=["mcp", "openai", "anthropic"],
        default="mcp",
        help="the framework whose tool format to print",
    )
    p = add("export", "write SOPs as Agent Skills folders or Cursor commands")
    p.add_argument(
        "format", choices=["skills", "cursor"], help="Agent Skills folders or Cursor commands"
    )
    p.add_argument("directory", metavar="DIR", help="where to write (created if missing)")
    p.add_argument("names", nargs="*", metavar="NAME", help="default: every SOP the catalog finds")
    add("rule", "print the SOP format rule for agents that write SOPs")
    for name, command in (plugins or {}).items():
        command.configure(add(name, command.help))
    return parser


_VALUED = {"--handlers", "--journal", "--sop-paths"}  # global options that take the next word


def _command_word(argv: Sequence[str]) -> str | None:
    """The command's name in ``argv`` (the first word that is no option or option value)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _VALUED:
            skip = True
        elif not word.startswith("-"):
            return word
    return None


def _plugins(argv: Sequence[str]) -> dict[str, PluginCommand]:
    """Installed commands, looked up only when the command is not built in (or for help)."""
    word = _command_word(argv)
    if word in COMMANDS:
        return {}
    return plugin_commands(frozenset(COMMANDS))


def _invoked(argv: Sequence[str]) -> str | None:
    """The built-in command ``argv`` invokes, if the parser may leave out the others:
    not for ``sop --help`` (before the command word), which lists them all."""
    word = _command_word(argv)
    if word not in COMMANDS:
        return None
    before = argv[: list(argv).index(word)]
    return None if "-h" in before or "--help" in before else word


def _resolve(
    command: str, plugins: Mapping[str, PluginCommand]
) -> Callable[[argparse.Namespace], int]:
    if command in plugins:
        return plugins[command].run
    module_name, _, func_name = COMMANDS[command].partition(":")
    func: Callable[[argparse.Namespace], int] = getattr(
        importlib.import_module(module_name), func_name
    )
    return func


def _redacted(text: str) -> str:
    """``text`` redacted for the terminal (engine.execution.redact)."""
    # imported here, not at the top: only an error message needs it, and its regexes
    # would cost every start-up ~4 ms (the `sop lint` cold start is a target, README "Speed")
    from engine.execution.redact import redact_text

    return redact_text(text)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        plugins = _plugins(argv)
        args = _merge_globals(build_parser(plugins, _invoked(argv)).parse_args(argv))
        use_sop_paths(args.sop_paths)
        return _resolve(args.command, plugins)(args)
    except UsageError as exc:
        if debug:
            raise
        # one line, every problem in it ("invalid parameters: a: ...; b: ...")
        print(f"sop: error: {_redacted(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except SopError as exc:
        if debug:
            raise
        print(f"sop: error: {_redacted(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    except ModuleNotFoundError as exc:
        if debug:
            raise
        missing = (exc.name or "").partition(".")[0]
        extra = _EXTRAS.get(missing)
        if extra is None:
            print(f"sop: internal error: {exc} (rerun with --debug)", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"sop: error: this command needs the optional package '{missing}': "
            f"pip install 'sop-engine[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("sop: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if debug:
            raise
        print(
            f"sop: internal error: {type(exc).__name__}: {_redacted(str(exc))}"
            " (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
