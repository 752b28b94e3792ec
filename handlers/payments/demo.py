"""``python -m handlers.payments.demo`` (``make demo``): the payment SOP end to end, locally.

1. Starts the Stripe sandbox (localstripe on 127.0.0.1, a free port).
2. Runs the seed's Example 1 (a charge) and Example 2 (a $150 refund that waits for
   confirmation) exactly as written, symbols bound as ``sop test`` binds them.
3. A flow that ends well: a $200 charge, a $150 refund held for confirmation,
   confirmed by running the command a person types (``sop resume RUN_ID --confirm
   TOKEN``, a real subprocess), refunded.
4. Prints every output and every run's action report (skipped optional lines with
   their reasons), then stops the sandbox.

Everything it writes (journal, outbox) goes to a fresh temporary directory, so it
runs the same on a fresh machine and on the hundredth run.
"""

from __future__ import annotations

import argparse
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
    print("=" * 78)
    print(title)
    print("=" * 78)


def _sop_command() -> list[str]:
    """The ``sop`` entry point beside this interpreter, else ``python -m engine``."""
    script = Path(sys.executable).with_name("sop")
    return [str(script)] if script.exists() else [sys.executable, "-m", "engine"]


def _render(journal: Any, run_id: str) -> str:
    from engine.cli.run import render
    from engine.execution.runner import recorded_result

    result = recorded_result(journal, run_id)
    return render(result) if result is not None else f"(no result recorded for {run_id})"


def _transactions(journal: Any, run_id: str) -> None:
    for record in journal.records(run_id):
        if record["kind"] == "transaction":
            print(f"  recorded transaction: {record['data']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handlers.payments.demo", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary journal and outbox")
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
            for example in run_examples(sop, registry=registry, journal=journal):
                print(example.report())
                print("output:", example.actual)
                if example.run_id:
                    print(_render(journal, example.run_id))
                    _transactions(journal, example.run_id)
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
            print(_render(journal, charge.run_id))
            _transactions(journal, charge.run_id)
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
            print(_render(journal, refund.run_id))
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
            _banner("A person confirms: " + " ".join(shown))
            done = subprocess.run(
                command, capture_output=True, text=True, cwd=ROOT, env=dict(os.environ), timeout=120
            )
            print(done.stdout.rstrip())
            if done.stderr.strip():
                print(done.stderr.rstrip())
            print(f"(exit code {done.returncode})")
            ok = ok and done.returncode == 0
            with Journal(journal_path) as journal:
                _transactions(journal, refund.run_id)
        messages = sorted(p.name for p in (work / "outbox").glob("*.eml"))
        _banner(f"Outbox: {len(messages)} message(s)")
        for name in messages:
            print(f"  {name}")
    print("\nsandbox stopped")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    print("demo " + ("finished: every step behaved as the SOP says" if ok else "FAILED: see above"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
