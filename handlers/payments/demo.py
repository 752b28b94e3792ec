"""``python -m handlers.payments.demo`` (``make demo``): the payment SOP end to end, locally.

1. Starts the Stripe sandbox (localstripe on 127.0.0.1, a free port).
2. Runs the seed's Example 1 (a charge) and Example 2 (a $150 refund that waits for
   confirmation) exactly as written, symbols bound as ``sop test`` binds them.
3. A flow that ends well: a $200 charge, a $150 refund held for confirmation,
   confirmed by running the command a person types (``sop resume RUN_ID --confirm
   TOKEN``, a real subprocess), refunded.
4. Tells it in one screenful: each run's status, output, counts and the optional lines
   it skipped (with why), then stops the sandbox. ``--details`` (``make demo
   DETAILS=1``) prints every run's whole action report and the resume's progress too.

Everything it writes (journal, outbox) goes to a fresh temporary directory, so it
runs the same on a fresh machine and on the hundredth run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _banner(title: str) -> None:
    print()
    print(f"== {title} " + "=" * max(0, 74 - len(title)))


def _sop_command() -> list[str]:
    """The ``sop`` entry point beside this interpreter, else ``python -m engine``."""
    script = Path(sys.executable).with_name("sop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine"]


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _story(result: Any, *, skipped: bool, head: bool) -> list[str]:
    """A run in a few lines: status, output, counts; the optional lines it skipped (why)."""
    data = result.to_dict(validate=False)
    lines = [f"run {result.run_id}: {data['status']}"] if head else []
    if data["output"]:
        shown = ", ".join(f"{k}={_value(v)}" for k, v in data["output"].items())
        lines.append(f"  output: {shown}")
    lines += [f"  error: {e}" for e in data["errors"]]
    counts: dict[str, int] = {}
    unreached = 0
    for action in data["actions"]:
        if str(action["reason"] or "").startswith("not reached"):
            unreached += 1
        else:
            counts[action["status"]] = counts.get(action["status"], 0) + 1
    tally = ", ".join(f"{n} {status}" for status, n in counts.items())
    lines.append(
        f"  {len(data['actions'])} lines: {tally}"
        + (f", {unreached} not reached" if unreached else "")
    )
    for action in data["actions"]:
        if skipped and action["status"] == "skipped" and not unreached:
            where = f"{action['level']} L{action['line']}"
            lines.append(f"    skipped {where} {action['text']}: {action['reason']}")
        if action["status"] == "pending":
            lines.append(f"  paused at L{action['line']} ({action['text']}): {action['reason']}")
    return lines


def _report(
    journal: Any, run_id: str, *, details: bool, skipped: bool = False, head: bool = True
) -> None:
    from engine.cli.run import render
    from engine.execution.runner import recorded_result

    result = recorded_result(journal, run_id)
    if result is None:
        print(f"(no result recorded for {run_id})")
    elif details:
        print(render(result))
    else:
        print("\n".join(_story(result, skipped=skipped, head=head)))
    for record in journal.records(run_id):
        if record["kind"] == "transaction":
            data = record["data"]
            if details:
                print(f"  recorded transaction: {data}")
            else:
                print(
                    f"  recorded {data.get('type')} {data.get('id')}: {data.get('amount')}"
                    f" {data.get('currency')} {data.get('status')}"
                )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handlers.payments.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary journal and outbox")
    parser.add_argument(
        "--details",
        action="store_true",
        help="every run's whole action report, the resume's progress",
    )
    args = parser.parse_args(argv)

    from engine.binding.packs import load_handlers
    from engine.execution.runner import RunStatus, run
    from engine.language.catalog import load
    from engine.storage.journal import Journal
    from engine.testing.examples import run_examples
    from handlers.sandbox import Sandbox

    work = Path(tempfile.mkdtemp(prefix="sop-demo-"))
    journal_path = work / "journal.db"
    ok = True
    with Sandbox() as sandbox:
        os.environ.update(sandbox.env())
        os.environ.update(
            {
                "SOP_JOURNAL": str(journal_path),
                "SOP_OUTBOX": str(work / "outbox"),
                "SOP_RETRY_BASE_SECONDS": os.environ.get("SOP_RETRY_BASE_SECONDS", "0.05"),
            }
        )
        print(f"Stripe sandbox on {sandbox.url}; journal {journal_path}; outbox {work / 'outbox'}")
        registry = load_handlers(["handlers.payments"], project_dir=ROOT)
        sop = load("payment-processing")
        with Journal(journal_path) as journal:
            _banner("Examples 1 and 2 of payment-processing, as written")
            for number, example in enumerate(run_examples(sop, registry=registry, journal=journal)):
                print(example.report())
                if example.run_id:
                    _report(
                        journal,
                        example.run_id,
                        details=args.details,
                        skipped=number == 0,
                        head=False,  # the example's line names the run and its status
                    )
                ok = ok and example.passed

            _banner("A $200 charge, then a $150 refund held for confirmation")
            from engine.execution.context import Services
            from handlers.payments.charges import make_customer

            services = Services(None, registry.services())

            class _Ctx:
                sop = None

            services.bind(_Ctx())  # type: ignore[arg-type]
            customer = make_customer(services, "cus_DEMO")
            charge = run(
                sop,
                {
                    "operation": "charge",
                    "customer_id": customer,
                    "amount": 20000,
                    "description": "Annual plan",
                },
                registry=registry,
                journal=journal,
                handlers=["handlers.payments"],
            )
            _report(journal, charge.run_id, details=args.details)
            ok = ok and charge.status is RunStatus.SUCCEEDED
            refund = run(
                sop,
                {
                    "operation": "refund",
                    "customer_id": customer,
                    "payment_intent": charge.output.get("transaction_id"),
                    "amount": 15000,
                },
                registry=registry,
                journal=journal,
                handlers=["handlers.payments"],
            )
            _report(journal, refund.run_id, details=args.details)
            ok = ok and refund.status is RunStatus.PAUSED and refund.pending is not None
        if refund.pending:
            command = [
                *_sop_command(),
                "resume",
                refund.run_id,
                "--confirm",
                str(refund.pending["token"]),
            ]
            shown = ["sop", *command[-4:]]
            if not args.details:
                command.append("--quiet")  # its report is told below, from the journal
            _banner("A person confirms: " + " ".join(shown))
            done = subprocess.run(
                command, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=120
            )
            if args.details:
                print(done.stdout.rstrip())
            if done.stderr.strip():
                print(done.stderr.rstrip())
            print(f"(exit code {done.returncode})")
            ok = ok and done.returncode == 0
            with Journal(journal_path) as journal:
                _report(journal, refund.run_id, details=False, skipped=not args.details)
        messages = sorted(p.name for p in (work / "outbox").glob("*.eml"))
        _banner(f"Outbox: {len(messages)} message(s), a confirmation and a receipt per payment")
        for name in messages if args.details else messages[:2]:
            print(f"  {name}")
        if len(messages) > 2 and not args.details:
            print(f"  ... and {len(messages) - 2} more")
        if args.keep:
            print(f"\nthe runs: sop runs --journal {journal_path}  (then sop inspect RUN_ID)")
    print("\nsandbox stopped")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("demo " + ("finished: every step behaved as the SOP says" if ok else "FAILED: see above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
