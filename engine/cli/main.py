"""The ``sop`` command line: argument parsing, dispatch, exit codes, one-line errors.

Each command lives in the module that owns its concept and is imported only when
invoked, so ``sop lint`` never pays for (or imports) what ``sop run`` needs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Mapping, Sequence

from engine.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from engine.cli.plugins import PluginCommand, plugin_commands
from engine.errors import SopError, UsageError
from engine.execution.redact import redact_text

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
    "runs": "engine.cli.run:cmd_runs",
    "inspect": "engine.cli.run:cmd_inspect",
    "journal": "engine.cli.run:cmd_journal",
    "coverage": "engine.cli.bind:cmd_coverage",
    "stub": "engine.cli.bind:cmd_stub",
    "test": "engine.cli.test:cmd_test",
    "mcp": "engine.cli.agent:cmd_mcp",
    "tools": "engine.cli.agent:cmd_tools",
}


# optional packages -> the extra that installs them (pyproject.toml)
_EXTRAS = {"localstripe": "sandbox", "aiohttp": "sandbox", "mcp": "mcp"}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


#: The options every command takes, before or after its name. Given before it they
#: land in ``GLOBAL_PREFIX + dest`` (argparse lets a subcommand's defaults overwrite the
#: main parser's values for a shared dest) and ``_merge_globals`` combines them.
GLOBAL_PREFIX = "global_"
_GLOBALS = ("handlers", "journal", "debug")


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
    return common


def _merge_globals(args: argparse.Namespace) -> argparse.Namespace:
    """Global options given before the command name join those given after it.

    ``--handlers`` from both places add up (before first); ``--debug`` in either place
    is on; ``--journal`` may be given in either place, or in both with the same path:
    two different paths are a usage error, never a silent choice.
    """
    before = {name: vars(args).pop(GLOBAL_PREFIX + name) for name in _GLOBALS}
    args.handlers = [*before["handlers"], *args.handlers]
    args.debug = before["debug"] or args.debug
    if before["journal"] is not None:
        if args.journal is not None and args.journal != before["journal"]:
            raise UsageError(
                f"--journal given twice: {before['journal']!r} before the command and"
                f" {args.journal!r} after it; give one"
            )
        args.journal = before["journal"]
    return args


def _params(p: argparse.ArgumentParser) -> None:
    p.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--params-file", metavar="FILE", help="YAML or JSON file of parameters")


def build_parser(plugins: Mapping[str, PluginCommand] | None = None) -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="sop", description=__doc__.splitlines()[0], parents=[_common(GLOBAL_PREFIX)]
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=[common])

    add("list", "list the SOPs the catalog finds").add_argument("--json", action="store_true")
    p = add("show", "show one SOP's parsed model")
    p.add_argument("name", metavar="NAME|PATH")
    p.add_argument("--json", action="store_true")
    p = add("lint", "diagnose SOP files")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument("--format", choices=["text", "json", "github"], default="text")
    p.add_argument("--strict", action="store_true", help="warnings fail too")
    p = add("graph", "draw the step graph (with --run: coloured by a run's statuses)")
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--format",
        choices=["mermaid", "dot", "json", "svg", "png"],
        default="mermaid",
        help="svg and png are drawn by Graphviz's dot (Debian: graphviz)",
    )
    p.add_argument("--run", metavar="RUN_ID", help="colour every line by its status in this run")
    add("schema", "print the parameter JSON Schema").add_argument("name", metavar="NAME")
    for name, help_text in (("plan", "bind without running"), ("run", "run an SOP")):
        p = add(name, help_text)
        p.add_argument("name", metavar="NAME")
        _params(p)
        p.add_argument("--json", action="store_true")
        if name == "run":
            p.add_argument("--confirm", metavar="TOKEN")
    p = add("resume", "resume a paused or interrupted run")
    p.add_argument("run_id", metavar="RUN_ID")
    _params(p)  # the exact values of parameters redaction altered in the journal
    p.add_argument("--confirm", metavar="TOKEN")
    p.add_argument("--json", action="store_true")
    add("runs", "list recorded runs").add_argument("--json", action="store_true")
    p = add("inspect", "show one recorded run")
    p.add_argument("run_id", metavar="RUN_ID")
    p.add_argument("--json", action="store_true")
    p = add("journal", "journal maintenance")
    p.add_argument("action", choices=["verify", "head"])
    p.add_argument("--head", metavar="SEQ:HASH", help="verify: the chain must still contain it")
    p = add("coverage", "SOP/handler coverage for CI")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--format", choices=["text", "json", "junit"], default="text")
    p.add_argument("--strict", action="store_true", help="unbound SHOULD lines fail too")
    add("stub", "print handler skeletons for unbound lines").add_argument("name", metavar="NAME")
    add("test", "run SOP Examples as tests").add_argument("names", nargs="*", metavar="NAME")
    add("mcp", "serve SOPs as MCP tools over stdio").add_argument(
        "--allow-agent-confirm",
        action="store_true",
        help="let agents confirm paused runs (default: only a person, via sop resume)",
    )
    p = add("tools", "print tool definitions for agent frameworks")
    p.add_argument("--format", choices=["mcp", "openai", "anthropic"], default="mcp")
    for name, command in (plugins or {}).items():
        command.configure(add(name, command.help))
    return parser


_VALUED = {"--handlers", "--journal"}  # global options that take the next word


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        plugins = _plugins(argv)
        args = _merge_globals(build_parser(plugins).parse_args(argv))
        return _resolve(args.command, plugins)(args)
    except UsageError as exc:
        if debug:
            raise
        print(f"sop: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except SopError as exc:
        if debug:
            raise
        print(f"sop: error: {redact_text(str(exc))}", file=sys.stderr)
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
            f"sop: internal error: {type(exc).__name__}: {redact_text(str(exc))}"
            " (rerun with --debug)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
