"""A charge through the engine against the same Stripe requests from a plain SDK script.

Both sides talk to the local Stripe sandbox (localstripe behind the idempotency layer) in
one run, alternating charge for charge. Engine: ``engine.run("payment-processing",
operation=charge)`` with the payments pack, an open journal, receipts to a temporary
outbox. Peer: a plain ``stripe.StripeClient`` making the requests the pack makes,
checked against the sandbox's request log before measuring (today four: the customer,
its default payment method, its latest charge, the PaymentIntent created and confirmed
under an idempotency key), so the peer stays the same work if the pack changes.
Rounds start from an emptied sandbox (localstripe slows as its store grows); the ratio
is the median of the rounds' ratios of medians. Target: engine <= 1.25x the script.

Wall time on this shared machine moves with the other processes' load more than most
changes do, so ``--instructions`` counts what this process executes instead (valgrind's
callgrind, switched on after the warm-up, the sandbox not traced): instructions per
charge on each side and their ratio, the same from one run to the next whatever the
load. It leaves out what the wall ratio includes (the sandbox's own time, waiting).

Run: .venv/bin/python bench/bench_charge.py [rounds]
     .venv/bin/python bench/bench_charge.py --instructions [charges]   (needs valgrind)
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import stripe
from report import skip_line, summary_line

import engine
from engine.storage.journal import Journal

TARGET = "<=1.25"
PACK = "handlers.payments"  # the payments pack's public module name (a package or a module)
CHARGES_PER_ROUND = 10
UNDER_CALLGRIND = "BENCH_CHARGE_UNDER_CALLGRIND"


def sandbox_class() -> Any:
    """The sandbox's ``Sandbox``, wherever the payments pack keeps it."""
    for name in ("handlers.sandbox", "handlers.payments.sandbox"):
        try:
            return importlib.import_module(name).Sandbox
        except (ImportError, AttributeError):
            continue
    raise SystemExit("bench_charge: cannot import the Stripe sandbox's Sandbox class")


@contextmanager
def bench_setup() -> Iterator[tuple[Any, stripe.StripeClient, Journal]]:
    """The pack's handlers, a fresh sandbox (its address in the environment), a client on
    it, and an open journal in a temporary folder that the receipts' outbox shares."""
    importlib.import_module(PACK)  # the pack's handlers, as `--handlers handlers.payments`
    with tempfile.TemporaryDirectory() as tmp, sandbox_class()() as sandbox:
        os.environ.update(sandbox.env())
        os.environ["SOP_OUTBOX"] = os.path.join(tmp, "outbox")
        os.environ.setdefault("SOP_KEY_FILE", os.path.join(tmp, "journal.key"))
        with Journal(Path(tmp) / "journal.db") as journal:
            yield sandbox, sandbox.client(timeout=30.0), journal


def provision(client: stripe.StripeClient) -> str:
    """A customer with a default Visa test card, as the pack's cus_ fixture makes one."""
    customer = client.v1.customers.create({"name": "Bench", "email": "bench@example.invalid"})
    pm = client.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    client.v1.customers.update(customer.id, {"invoice_settings": {"default_payment_method": pm.id}})
    return str(customer.id)


def plain_charge(client: stripe.StripeClient, customer_id: str, amount: int) -> str:
    """What a hand-written integration sends for one off-session card charge."""
    customer = client.v1.customers.retrieve(customer_id)
    pm_id = customer.invoice_settings.default_payment_method if customer.invoice_settings else None
    assert isinstance(pm_id, str), "the customer has no default payment method"
    pm = client.v1.payment_methods.retrieve(pm_id)
    client.v1.charges.list({"customer": customer_id, "limit": 1})  # the latest charge
    intent = client.v1.payment_intents.create(
        {
            "amount": amount,
            "currency": "usd",
            "customer": customer_id,
            "payment_method": pm.id,
            "payment_method_types": ["card"],
            "confirm": True,
            "off_session": True,
            "metadata": {"order": "bench"},
        },
        {"idempotency_key": str(uuid.uuid4())},
    )
    assert intent.status == "succeeded", intent.status
    return str(intent.id)


def engine_charge(journal: Journal, customer_id: str, amount: int) -> str:
    params = {"operation": "charge", "customer_id": customer_id, "amount": amount}
    result = engine.run("payment-processing", params, journal=journal, handlers=[PACK])
    assert result.ok, result.errors
    return str(result.output["transaction_id"])


def requests_made(sandbox: Any, charge: Callable[[], object]) -> list[tuple[str, str]]:
    """(method, path) of each request one charge sends, ids folded to their prefixes."""
    before = len(sandbox.requests())
    charge()
    return [
        (r["method"], re.sub(r"/([a-z]{2,4})_[A-Za-z0-9]{6,}", r"/\1_ID", r["path"]))
        for r in sandbox.requests()[before:]
    ]


def instructions(charges: int) -> int:
    """Run this script under callgrind and print instructions per charge, both sides."""
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        print(skip_line("charge_instructions", "valgrind (callgrind) is not installed"))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.%p")
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        cmd += [sys.executable, __file__, "--instructions", str(charges)]
        env = {**os.environ, UNDER_CALLGRIND: "1"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout + done.stderr[-2000:])
            return done.returncode
        totals: dict[str, int] = {}
        for dump in Path(tmp).iterdir():
            text = dump.read_text(errors="replace")
            side = re.search(r"^desc: Trigger: dump (engine|plain)$", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if side and total:
                totals[side.group(1)] = int(total.group(1))
    e, p = totals["engine"] / charges, totals["plain"] / charges
    print(f"instructions per charge (callgrind, {charges} charges each side, after warm-up):")
    print(f"engine {e / 1e6:.2f}M   plain SDK script {p / 1e6:.2f}M   ratio {e / p:.3f}")
    return 0


def _counted(charges: int) -> int:
    """Under callgrind: warm up, then count ``charges`` engine charges, then as many plain."""

    def callgrind(*args: str) -> None:
        subprocess.run(
            ["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True
        )

    with bench_setup() as (_sandbox, client, journal):
        customer = provision(client)
        for _ in range(3):  # imports, first connections, caches
            engine_charge(journal, customer, 100)
            plain_charge(client, customer, 100)
        callgrind("--instr=on")
        for i in range(charges):
            engine_charge(journal, customer, 200 + i)
        callgrind("--dump=engine")
        for i in range(charges):
            plain_charge(client, customer, 200 + i)
        callgrind("--dump=plain")
        callgrind("--instr=off")
    return 0


def main() -> int:
    if "--instructions" in sys.argv:
        args = [a for a in sys.argv[1:] if a != "--instructions"]
        charges = int(args[0]) if args else 5
        return _counted(charges) if os.environ.get(UNDER_CALLGRIND) else instructions(charges)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with bench_setup() as (sandbox, client, journal):
        customer = provision(client)
        engine_charge(journal, customer, 100)  # warm-up: imports, first connections
        plain_charge(client, customer, 100)
        sent = requests_made(sandbox, lambda: engine_charge(journal, customer, 101))
        plain = requests_made(sandbox, lambda: plain_charge(client, customer, 101))
        print(f"requests per charge: engine {sent}")
        if sent != plain:
            print(f"the plain script sends other requests: {plain}; fix plain_charge()")
            return 1
        engine_ms: list[float] = []
        plain_ms: list[float] = []
        ratios: list[float] = []
        for _ in range(rounds):
            sandbox.reset()
            customer = provision(client)
            times: dict[str, list[float]] = {"engine": [], "plain": []}
            for i in range(CHARGES_PER_ROUND):
                for side in ("engine", "plain") if i % 2 == 0 else ("plain", "engine"):
                    started = time.perf_counter()
                    if side == "engine":
                        engine_charge(journal, customer, 200 + i)
                    else:
                        plain_charge(client, customer, 200 + i)
                    times[side].append(time.perf_counter() - started)
            e, p = statistics.median(times["engine"]), statistics.median(times["plain"])
            engine_ms.append(e * 1e3)
            plain_ms.append(p * 1e3)
            ratios.append(e / p)

    e, p = statistics.median(engine_ms), statistics.median(plain_ms)
    ratio = statistics.median(ratios)
    print(f"{rounds} rounds of {CHARGES_PER_ROUND} charges each side, alternating")
    print(f"engine charge (run + journal + receipt): {e:6.1f} ms   rounds: {_r(engine_ms)}")
    print(f"plain SDK script, same requests:         {p:6.1f} ms   rounds: {_r(plain_ms)}")
    print(f"engine / plain: {ratio:.2f}x (target {TARGET})   rounds: {_r(ratios, 2)}")
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(
        summary_line(
            "charge",
            ratio,
            TARGET,
            what="a charge on the sandbox vs the same Stripe requests from a plain SDK script",
            measured=f"{e:.1f} ms",
            peer=f"plain SDK {p:.1f} ms",
        )
    )
    return 0


def _r(values: list[float], digits: int = 1) -> list[float]:
    return [round(v, digits) for v in values]


if __name__ == "__main__":
    sys.exit(main())
