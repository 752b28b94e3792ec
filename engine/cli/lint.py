"""``sop lint`` and ``sop schema``: author-facing commands (``sop graph``: engine.cli.graph).

Kept light on purpose: no handler pack, no stripe; jsonschema is imported only
when an SOP's examples are validated or JSON output is checked against its schema.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli.common import emit_json
from engine.errors import UsageError
from engine.model import Diagnostic, Severity, Sop


def _default_paths() -> list[str]:
    if Path("sops").is_dir():
        return ["sops"]
    try:
        from engine.language.catalog import entries

        return [str(entry.path) for entry in entries()]
    except ImportError:
        from engine.language.resources import builtin_sops_dir

        return [str(builtin_sops_dir())]


def _by_name(path: str) -> str:
    """A PATH that does not exist but names a catalog SOP lints that SOP's file."""
    if Path(path).exists():
        return path
    from engine.language.catalog import find

    found = find(path)
    return str(found) if found is not None else path


def _github_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def format_diagnostic(d: Diagnostic, fmt: str) -> str:
    """One diagnostic as a text (ruff style) or GitHub workflow-command line."""
    path = d.path or "<text>"
    if fmt == "github":
        kind = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}[
            d.severity
        ]
        return (
            f"::{kind} file={_github_escape(path, prop=True)},line={d.line},col={d.col},"
            f"title={d.code}::{_github_escape(d.message)}"
        )
    return f"{path}:{d.line}:{d.col}: {d.code} [{d.severity.value}] {d.message}"


def diagnostic_dict(d: Diagnostic) -> dict[str, object]:
    return {
        "path": d.path,
        "line": d.line,
        "col": d.col,
        "code": d.code,
        "severity": d.severity.value,
        "message": d.message,
    }


def cmd_lint(args: argparse.Namespace) -> int:
    from engine.language.lint import lint_paths, sop_files

    paths = [_by_name(p) for p in args.paths] or _default_paths()
    found = lint_paths(paths)
    fmt = getattr(args, "format", "text")
    if fmt == "json":
        emit_json([diagnostic_dict(d) for d in found], "lint.schema.json")
    else:
        for d in found:
            sys.stdout.write(format_diagnostic(d, fmt) + "\n")
    errors = sum(d.severity is Severity.ERROR for d in found)
    warnings = sum(d.severity is Severity.WARNING for d in found)
    infos = len(found) - errors - warnings
    if fmt == "text":
        files = len(sop_files(paths)[0])
        if found:
            print(
                f"Found {errors} error(s), {warnings} warning(s), {infos} info(s) "
                f"in {files} file(s).",
                file=sys.stderr,
            )
        elif files == 0:
            print(f"No *.sop.md files found in: {' '.join(paths)}", file=sys.stderr)
        else:
            print(f"All checks passed ({files} file(s)).", file=sys.stderr)
    failed = errors > 0 or (args.strict and warnings > 0)
    return 1 if failed else 0


def load_sop(name: str) -> Sop:
    """NAME through the catalog; a path also works."""
    try:
        from engine.language.catalog import load
    except ImportError:  # catalog not available: a path, ./sops/NAME.sop.md or a built-in
        from engine.language.parser import parse
        from engine.language.resources import builtin_sops_dir

        candidates = [
            Path(name),
            Path("sops") / f"{name}.sop.md",
            builtin_sops_dir() / f"{name}.sop.md",
        ]
        for path in candidates:
            if path.is_file():
                return parse(path.read_bytes(), path=str(path))
        searched = ", ".join(str(c) for c in candidates)
        raise UsageError(f"unknown SOP {name!r} (searched: {searched})") from None
    return load(name)


def cmd_schema(args: argparse.Namespace) -> int:
    from engine.language.params import schema_for

    sop = load_sop(args.name)
    json.dump(schema_for(sop), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
