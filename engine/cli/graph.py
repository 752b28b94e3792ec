"""``sop graph NAME [--run RUN_ID] [--format mermaid|dot|json|svg|png]``.

With ``--run`` every line is coloured by its status in that run (read from the
journal, which is never created here); SVG and PNG are laid out by Graphviz's ``dot``.
"""

from __future__ import annotations

import argparse
import sys

from engine.errors import UsageError
from engine.model import Sop


def _statuses(args: argparse.Namespace, sop: Sop) -> dict[str, str] | None:
    run_id = getattr(args, "run", None)
    if run_id is None:
        return None
    from engine.execution.run_graph import action_statuses
    from engine.storage.journal import Journal
    from engine.storage.location import chosen, exists
    from engine.storage.runids import resolve_run_id

    path = chosen(getattr(args, "journal", None))
    if not exists(path):
        raise UsageError(f"--run {run_id}: unknown run (no journal at {path})")
    with Journal(path) as journal:
        try:
            run_id = resolve_run_id(journal, run_id)  # a unique prefix names it too
        except UsageError as exc:
            raise UsageError(f"--run {run_id}: {exc}") from None
        row = journal.run(run_id)
        if row is None:
            raise UsageError(f"--run {run_id}: unknown run (journal {journal.location})")
        if row.sop != sop.name:
            raise UsageError(
                f"--run {run_id}: a run of '{row.sop}', not of '{sop.name}'"
                f" (draw it with: sop graph {row.sop} --run {run_id})"
            )
        return action_statuses(journal, run_id)


def cmd_graph(args: argparse.Namespace) -> int:
    from engine.cli.lint import load_sop
    from engine.language.graph import render

    sop = load_sop(args.name)
    fmt = getattr(args, "format", None) or "mermaid"
    statuses = _statuses(args, sop)
    if fmt == "json":  # checked against the published schema, as every JSON output is
        from engine.cli.common import emit_json
        from engine.language.graph import to_json

        emit_json(to_json(sop, statuses), "graph.schema.json")
        return 0
    drawn = render(sop, fmt, statuses)
    if isinstance(drawn, bytes):
        sys.stdout.buffer.write(drawn)
        sys.stdout.buffer.flush()
    else:
        sys.stdout.write(drawn if drawn.endswith("\n") else drawn + "\n")
    return 0
