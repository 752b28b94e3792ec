"""``sop reject`` and ``sop cancel``: a person's decisions on a run, journaled with who
(``--as NAME``, default the OS user) and why (``--reason``).

Exit codes: 1 when the run ended rejected or cancelled (as ``sop run`` exits for a run
that did not succeed), 0 when a cancellation was requested of a run another process is
executing (it stops before its next action), 1 when refused (one line), 2 unknown run.
"""

from __future__ import annotations

import argparse

from engine.cli.common import EXIT_OK
from engine.cli.run import emit_result, recorded_run


def cmd_reject(args: argparse.Namespace) -> int:
    from engine.execution.decide import reject

    journal, _ = recorded_run(args)
    with journal:
        result = reject(args.run_id, reason=args.reason, by=args.as_, journal=journal)
    return emit_result(result, args)


def cmd_cancel(args: argparse.Namespace) -> int:
    from engine.execution.decide import cancel

    journal, _ = recorded_run(args)
    with journal:
        result = cancel(args.run_id, reason=args.reason, by=args.as_, journal=journal)
        if result is None:
            lease = journal.lease(args.run_id)
            owner = f" ({lease.owner()})" if lease is not None else ""
            print(
                f"cancellation of run {args.run_id} requested: the process executing it{owner}"
                f" stops before its next action (`sop inspect {args.run_id}`)"
            )
            return EXIT_OK
    return emit_result(result, args)


__all__ = ["cmd_cancel", "cmd_reject"]
