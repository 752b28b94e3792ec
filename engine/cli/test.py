"""``sop test [NAME ...]``: run SOP Examples as tests (exit 1 on any failure).

With no names, every SOP the catalog finds that has Examples. Each example's
report line says PASS or FAIL; a failure shows what differed as a unified diff.
``-k PATTERN`` runs only the examples whose name contains PATTERN (as ``pytest -k``
with one word; "deselected" counts the others), ``-x`` stops at the first failure.
"""

from __future__ import annotations

import argparse

from engine.cli.common import EXIT_FAILED, EXIT_OK
from engine.errors import LintRefused, PlanRefused


def cmd_test(args: argparse.Namespace) -> int:
    from engine.binding.packs import load_handlers
    from engine.language.catalog import entries, load
    from engine.language.example_symbols import example_diagnostics
    from engine.storage.journal import Journal
    from engine.storage.location import chosen
    from engine.testing.examples import environment, run_examples

    names = list(args.names) or [e.name for e in entries()]
    sops = [load(name) for name in names]  # UsageError (exit 2) for an unknown name, before running
    registry = load_handlers(args.handlers, sops=[sop.name for sop in sops])
    journal_path = chosen(getattr(args, "journal", None))
    select: str | None = getattr(args, "select", None)
    exitfirst = bool(getattr(args, "exitfirst", False))
    passed = failed = selected = documented = 0
    with Journal(journal_path) as journal, environment(registry):
        for sop in sops:
            if not sop.examples:
                if args.names:
                    print(f"SKIP {sop.name}: no Examples section")
                continue
            for warning in example_diagnostics(sop):
                print(
                    f"note {sop.path or sop.name}:{warning.line}: {warning.code} {warning.message}"
                )
            if failed and exitfirst:
                break
            try:
                results = run_examples(
                    sop, registry=registry, journal=journal, select=select, exitfirst=exitfirst
                )
            except (PlanRefused, LintRefused) as exc:
                print(f"FAIL {sop.name}: {exc}")
                failed += len(sop.examples)
                continue
            selected += len(results)
            for result in results:
                print(result.report())
                if result.documentation:
                    documented += 1
                elif result.passed:
                    passed += 1
                else:
                    failed += 1
    summary = f"{passed} passed, {failed} failed"
    if select is not None:
        total = sum(len(sop.examples) for sop in sops)
        summary += f", {total - selected} deselected by -k {select!r}"
    if documented:
        summary += f", {documented} documentation"
    print(summary)
    return EXIT_FAILED if failed else EXIT_OK


__all__ = ["cmd_test"]
