"""Secrets: card numbers, CVCs and API keys planted in every input field never come out.

Every parameter of a charge / refund / subscription run carries secrets (valid fields in
a run that goes through, invalid ones in a run that is refused); then the bytes of
everything the engine wrote or said are scanned: stdout and stderr (text, ``--json``,
``--debug``), the journal file (database and WAL), the outbox, ``sop inspect`` / ``sop
runs``, and the MCP server's answers. Card numbers are searched with every separator
removed, so a leak in any formatting is found.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from handlers.sandbox import Sandbox
from tests.support.cli import sop_cli
from tests.support.standing_proof import (
    ROOT,
    figure,
    journal_bytes,
    new_customer,
    new_plan,
    sop_inproc,
)

CARDS = ("4242424242424242", "5555555555554444", "378282246310005")
CVC = "987"
SK_LIVE = "sk_live_51Hq8xQ2eZvKYlo2C0fFakeLiveKey00"
SK_TEST = "sk_test_4eC39HqLyjWDarjtT1zdp7dcFake"
CVC_FORMS = (
    '{"cvc": "987"}',
    "cvc=987",
    "CVV: 987",
    "security code 987",
    '{"card": {"number": "4242424242424242", "cvc": "987", "exp": "12/30"}}',
    '"cvv2":"987"',
)
CARD_FORMS = (
    "4242424242424242",
    "4242 4242 4242 4242",
    "5555-5555-5555-4444",
    "3782 822463 10005",
    '{"number": "5555555555554444"}',
)
EVERYTHING = " ".join((*CARD_FORMS, *CVC_FORMS, SK_LIVE, SK_TEST))
#: A CVC next to its name, in any syntax: the value itself is too short to search alone.
CVC_LEAK = re.compile(rb"(?i)(cvc|cvv2?|security.code)[\"'\s:=\\]{0,8}" + CVC.encode())


def leaks(blob: bytes, extra: tuple[str, ...] = ()) -> list[str]:
    squeezed = re.sub(rb"[\s\-._]", b"", blob)
    found = [card for card in CARDS if card.encode() in squeezed]
    found += [key for key in (SK_LIVE, SK_TEST, *extra) if key.encode() in blob]
    found += [m.group(0).decode() for m in CVC_LEAK.finditer(blob)]
    return found


def _plants(customer: str, pi: str, plan: str) -> list[dict[str, str]]:
    """One run per field: the secrets in that field (whole-text fields get all forms)."""
    charge = {"operation": "charge", "customer_id": customer, "amount": "2500"}
    return [
        {**charge, "description": EVERYTHING[:500]},
        {**charge, "description": " ".join(CVC_FORMS)},
        {**charge, "idempotency_key": "4242 4242 4242 4242 cvc=987"},
        {**charge, "customer_id": "cus_4242424242424242"},
        {**charge, "amount": "4242424242424242"},
        {**charge, "currency": "5555-5555-5555-4444"},
        {**charge, "operation": "charge 4242424242424242"},
        {**charge, "note": f'{{"cvc": "987"}} {SK_LIVE}'},
        {**charge, "4242424242424242": "1"},
        {
            "operation": "refund",
            "customer_id": customer,
            "payment_intent": pi,
            "amount": "100",
            "description": EVERYTHING[:500],
        },
        {"operation": "refund", "customer_id": customer, "payment_intent": "pi_4242424242424242"},
        {
            "operation": "subscription",
            "customer_id": customer,
            "plan": plan,
            "description": " ".join(CARD_FORMS),
        },
        {"operation": "subscription", "customer_id": customer, "plan": "plan_4242424242424242"},
    ]


def test_planted_secrets_never_come_out(
    sandbox: Sandbox, proof_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    customer = new_customer(sandbox, "secrets@example.invalid")
    plan = new_plan(sandbox)
    db = proof_env / "journal.db"
    env = {**sandbox.env(), "SOP_JOURNAL": str(db), "SOP_OUTBOX": str(proof_env / "outbox")}
    for name, val in env.items():
        monkeypatch.setenv(name, val)
    paid = sop_cli(
        "run",
        "payment-processing",
        "-p",
        "operation=charge",
        "-p",
        f"customer_id={customer}",
        "-p",
        "amount=5000",
        "--json",
        cwd=ROOT,
        env=env,
    )
    pi = json.loads(paid.stdout)["output"]["transaction_id"]
    found: dict[str, list[str]] = {}
    statuses: list[str] = []
    for i, params in enumerate(_plants(customer, pi, plan)):
        args = [arg for k, v in params.items() for arg in ("-p", f"{k}={v}")]
        flags = (["--json"], [], ["--debug"])[i % 3]
        if "--debug" not in flags:  # the CLI in-process: the same output, faster
            code, out, err = sop_inproc("run", "payment-processing", *args, *flags)
        else:  # a real process: tracebacks and logging as a user sees them
            done = sop_cli("run", "payment-processing", *args, *flags, cwd=ROOT, env=env)
            code, out, err = done.returncode, done.stdout, done.stderr
        statuses.append(str(code))
        for stream, text in (("stdout", out), ("stderr", err)):
            hits = leaks(text.encode(), (sandbox.api_key,))
            if hits:
                found[f"run #{i} {' '.join(flags)} {stream} ({sorted(params)})"] = hits
    for row in json.loads(sop_inproc("runs", "--json", "--journal", str(db))[1]):
        for flags in (["--json"], []):
            _, out, err = sop_inproc("inspect", row["run_id"], *flags, "--journal", str(db))
            hits = leaks((out + err).encode(), (sandbox.api_key,))
            if hits:
                found[f"inspect {row['run_id'][:8]} {' '.join(flags)}"] = hits
    hits = leaks(journal_bytes(db), (sandbox.api_key,))
    if hits:
        found["journal bytes (db, -wal, -shm)"] = hits
    for mail in sorted((proof_env / "outbox").glob("*")):
        hits = leaks(mail.read_bytes(), (sandbox.api_key,))
        if hits:
            found[f"outbox {mail.name}"] = hits
    mcp_hits = _mcp_leaks(sandbox, proof_env, customer)
    found.update(mcp_hits)
    figure(
        "secrets",
        runs_with_planted_secrets=len(statuses),
        exit_codes=" ".join(statuses),
        places_scanned="stdout, stderr, --debug, --json, inspect, runs, journal db+wal, "
        "outbox, MCP tool results",
        places_leaking=len(found),
        leaking={k: sorted(set(v))[:2] for k, v in found.items()},
    )
    # defect 7 (i9-inputs): CVCs in JSON / key=value / prose must be redacted everywhere
    assert found == {}


def _mcp_leaks(sandbox: Sandbox, proof_env: Path, customer: str) -> dict[str, list[str]]:
    """Call the payment tool over MCP with planted secrets; scan every answer."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SOP_", "STRIPE_"))}
    env.update(sandbox.env(), SOP_OUTBOX=str(proof_env / "mcp-outbox"))
    argv = ["-m", "engine", "mcp", "--journal", str(proof_env / "mcp.db")]
    argv += ["--handlers", "handlers.payments"]
    params = StdioServerParameters(command=os.sys.executable, args=argv, cwd=str(ROOT), env=env)
    found: dict[str, list[str]] = {}

    def scan(what: str, result: Any) -> None:
        blob = json.dumps(
            {
                "content": [getattr(b, "text", "") for b in result.content],
                "structured": result.structured_content,
            },
            default=str,
        ).encode()
        hits = leaks(blob, (sandbox.api_key,))
        if hits:
            found[f"MCP {what}"] = hits

    async def body() -> None:
        with (proof_env / "mcp.log").open("a") as errlog:
            async with Client(stdio_client(params, errlog=errlog), read_timeout_seconds=60) as c:
                calls = [
                    {
                        "operation": "charge",
                        "customer_id": customer,
                        "amount": 2500,
                        "description": EVERYTHING[:500],
                    },
                    {
                        "operation": "charge",
                        "customer_id": customer,
                        "amount": 2500,
                        "description": " ".join(CVC_FORMS),
                    },
                    {"operation": "charge", "customer_id": "cus_4242424242424242", "amount": 1},
                    {"operation": "charge", "customer_id": customer, "amount": 4242424242424242},
                    {
                        "operation": "charge",
                        "customer_id": customer,
                        "amount": 1,
                        "currency": "4242 4242 4242 4242",
                    },
                ]
                for i, arguments in enumerate(calls):
                    result = await c.call_tool("payment_processing", arguments)
                    scan(f"payment_processing #{i}", result)
                    run_id = (result.structured_content or {}).get("run_id")
                    if run_id:
                        scan(
                            f"inspect_run #{i}",
                            await c.call_tool("inspect_run", {"run_id": run_id}),
                        )

    anyio.run(body)
    hits = leaks(journal_bytes(proof_env / "mcp.db"), (sandbox.api_key,))
    if hits:
        found["MCP journal bytes"] = hits
    log = proof_env / "mcp.log"
    if log.exists() and (hits := leaks(log.read_bytes(), (sandbox.api_key,))):
        found["MCP server stderr"] = hits
    return found


def test_the_scanner_finds_every_form_it_is_trusted_with() -> None:
    """The proof is only as good as its scanner: each planted form is found, masks are not."""
    for form in (*CARD_FORMS, *CVC_FORMS, SK_LIVE, SK_TEST):
        assert leaks(form.encode()), form
        assert leaks(json.dumps({"x": form}).encode()), form  # JSON-escaped too
    for masked in ('"cvc": "***"', "cvc=[redacted]", "4242 **** **** 4242", "sk_live_***"):
        assert leaks(masked.encode()) == [], masked
