"""One of several processes charging on a shared journal: ``charge_worker.py JOURNAL CUSTOMER N``.

Prints one JSON line per run (run id, status, actions); the parent checks the journal.
"""

from __future__ import annotations

import json
import sys

from standing_proof import ROOT

from engine.binding.packs import load_handlers
from engine.execution.runner import run
from engine.storage.journal import Journal


def main(journal: str, customer: str, count: int) -> None:
    registry = load_handlers(["handlers.payments"], project_dir=ROOT)
    with Journal(journal) as jr:
        for i in range(count):
            params = {"operation": "charge", "customer_id": customer, "amount": 100 + i}
            result = run("payment-processing", params, registry=registry, journal=jr)
            line = {
                "run_id": result.run_id,
                "status": result.status.value,
                "errors": result.errors,
                "actions": [a.to_dict() for a in result.actions],
            }
            sys.stdout.write(json.dumps(line) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
