"""``sop export`` and ``sop rule``: handing SOPs to agents that do not speak MCP."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """Write the SOPs (all the catalog finds, or those named) as skills or Cursor commands."""
    from engine.agents.export import render, write_files
    from engine.language.catalog import entries, load

    names = list(args.names) or [entry.name for entry in entries()]
    sops = [load(name) for name in names]  # every SOP checked before anything is written
    directory = Path(args.directory).expanduser()
    written = write_files(directory, render(args.format, sops))
    for item in written:
        state = "wrote" if item.changed else "unchanged"
        print(f"{state} {directory / item.path}")
    changed = sum(item.changed for item in written)
    print(f"{len(sops)} SOPs exported as {args.format} to {directory} ({changed} files written)")
    return EXIT_OK


def cmd_rule(args: argparse.Namespace) -> int:
    """Print the SOP format rule, generated from the parser's own tables."""
    from engine.language.rule import render_rule

    sys.stdout.write(render_rule())
    return EXIT_OK
