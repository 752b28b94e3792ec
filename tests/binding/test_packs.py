"""Handler packs as plugins: found from any directory, loaded only for the SOPs they serve.

Most checks run ``sop`` (or a short Python program) as a subprocess: packs register
into the process-wide default registry, and "stripe was never imported" is a
property of a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

import engine
from engine.binding.coverage import coverage
from engine.binding.packs import describe, load_handlers, pack_sops, serves
from engine.binding.registry import Registry
from engine.errors import HandlerImportError
from engine.execution.context import RunContext
from engine.language.parser import parse
from handlers.payments.notify import Notifiers
from tests.support.cli import pythonpath, sop_cli

GREET = """\
# Greet Visitors

**Version**: 0.1.0
**Status**: Active

## Overview

A procedure that has nothing to do with payments.

## Parameters

- **visitor** (string): Who arrived

## Steps

### 1. Greet

**Actions**:
- MUST say hello to the visitor
- MAY offer a cup of tea

**Validation**:
- The visitor was greeted

## Security Considerations

- MUST NOT shout at the visitor
"""

GREET_HANDLERS = """\
from engine import RunContext, action, check


@action("say hello to the visitor")
def hello(ctx: RunContext) -> None:
    ctx.output["greeting"] = f"hello {ctx.params['visitor']}"


@action("offer a cup of tea")
def tea(ctx: RunContext) -> None:
    pass


@check("The visitor was greeted")
def greeted(ctx: RunContext) -> bool:
    return "greeting" in ctx.output


@action("shout at the visitor")
def no_shouting(ctx: RunContext) -> None:
    pass
"""

PAYMENT_PLAN = ["-p", "operation=charge", "-p", "customer_id=cus_1", "-p", "amount=100"]
HEAVY = ("stripe", "aiohttp", "jinja2", "handlers.payments.charges")


def _greet_dir(tmp_path: Path, *, pyproject: str | None = None) -> Path:
    """A folder with the greet SOP and its handler module ``greetpack``."""
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "greet.sop.md").write_text(GREET)
    (tmp_path / "greetpack.py").write_text(GREET_HANDLERS)
    if pyproject is not None:
        (tmp_path / "pyproject.toml").write_text(pyproject)
    return tmp_path


def _sop_in_fresh_process(cwd: Path, *args: str) -> tuple[int, list[str], str]:
    """``sop ARGS`` in a fresh interpreter: exit code, heavy modules it imported, output."""
    code = (
        "import sys\n"
        "from engine.cli.main import main\n"
        "rc = main(sys.argv[1:])\n"
        f"print('IMPORTED', [m for m in {HEAVY!r} if m in sys.modules])\n"
        "sys.exit(rc)\n"
    )
    env = {"PYTHONPATH": pythonpath(cwd), "SOP_PATH": ""}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env={**_clean_env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    marker = [line for line in proc.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert marker, proc.stdout + proc.stderr
    imported: list[str] = json.loads(marker[-1].removeprefix("IMPORTED ").replace("'", '"'))
    return proc.returncode, imported, proc.stdout + proc.stderr


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SOP_", "STRIPE_"))}


# ------------------------------------------------------------------ from any directory


def test_sop_plan_of_a_payment_sop_binds_from_another_directory(tmp_path: Path) -> None:
    """No pyproject, no --handlers: the installed payments pack serves payment-processing."""
    proc = sop_cli(
        "plan",
        "payment-processing",
        *PAYMENT_PLAN,
        cwd=tmp_path,
        env={"STRIPE_API_KEY": "sk_test_x"},
        drop=["SOP_PATH"],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ready: every required line is bound" in proc.stdout
    assert "-> handlers.payments.charges." in proc.stdout


def test_sop_run_of_a_payment_sop_binds_from_another_directory(
    tmp_path: Path, stripe_sandbox: Any
) -> None:
    stripe_sandbox.reset()
    customer = stripe_sandbox.client().v1.customers.create(params={"email": "ada@example.com"})
    proc = sop_cli(
        "run",
        "payment-processing",
        "-p",
        "operation=refund",
        "-p",
        f"customer_id={customer.id}",
        "-p",
        "payment_intent=pi_missing",
        "-p",
        "amount=500",
        "--json",
        cwd=tmp_path,
        env={**stripe_sandbox.env(), "SOP_JOURNAL": str(tmp_path / "journal.db")},
        drop=["SOP_PATH"],
    )
    assert "unbound" not in proc.stderr and "refusing to run" not in proc.stderr, proc.stderr
    result = json.loads(proc.stdout)
    assert result["sop"] == "payment-processing"
    assert result["status"] == "failed"  # ran: Stripe has no such payment intent
    assert any("pi_missing" in error for error in result["errors"]), result["errors"]


def test_sop_mcp_started_elsewhere_serves_working_payment_tools(
    tmp_path: Path, stripe_sandbox: Any
) -> None:
    """An MCP host that starts ``sop mcp`` in a bare folder, without --handlers."""
    stripe_sandbox.reset()
    stripe = stripe_sandbox.client()
    customer = stripe.v1.customers.create(params={"email": "ada@example.com"})
    card = stripe.v1.payment_methods.attach("pm_card_visa", {"customer": customer.id})
    stripe.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    env = {**_clean_env(), **stripe_sandbox.env()}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "engine", "mcp", "--journal", str(tmp_path / "journal.db")],
        cwd=str(tmp_path),
        env=env,
    )
    seen: dict[str, Any] = {}

    async def body() -> None:
        with (tmp_path / "server.log").open("a", encoding="utf-8") as errlog:
            transport = stdio_client(params, errlog=errlog)
            async with Client(transport, read_timeout_seconds=60) as client:
                result = await client.call_tool(
                    "payment_processing",
                    {"operation": "charge", "customer_id": customer.id, "amount": 2500},
                )
                seen["error"] = result.is_error
                seen["run"] = result.structured_content

    anyio.run(body)
    assert seen["error"] is False, seen
    assert seen["run"]["status"] == "succeeded"
    assert seen["run"]["output"]["success"] is True


# ------------------------------------------------------------------ the Python API


def test_python_api_loads_the_packs_of_pyproject(tmp_path: Path) -> None:
    """``engine.plan(name, ...)`` sees ``[tool.sop] handlers`` as ``sop plan`` does."""
    project = _greet_dir(tmp_path, pyproject='[tool.sop]\nhandlers = ["greetpack"]\n')
    code = (
        "import engine\n"
        "plan = engine.plan('greet', {'visitor': 'ada'})\n"
        "print('OK' if plan.ok else 'UNBOUND')\n"
        "result = engine.run('greet', {'visitor': 'ada'})\n"
        "print(result.status.value, result.output)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project,
        env={**_clean_env(), "SOP_JOURNAL": str(project / "journal.db")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["OK", "succeeded {'greeting': 'hello ada'}"]


def test_python_api_loads_installed_packs_from_another_directory(tmp_path: Path) -> None:
    code = (
        "import engine\n"
        "plan = engine.plan('payment-processing',"
        " {'operation': 'charge', 'customer_id': 'cus_1', 'amount': 100})\n"
        "print('OK' if plan.ok else 'UNBOUND')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**_clean_env(), "STRIPE_API_KEY": "sk_test_x"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["OK"]


def test_run_context_is_public_api() -> None:
    assert engine.RunContext is RunContext
    assert "RunContext" in engine.__all__


# ------------------------------------------------------------------ lazy heavy imports


def test_unrelated_sop_never_imports_stripe_outside_a_project(tmp_path: Path) -> None:
    """Installed packs are declared (a light module) but not loaded for greet."""
    folder = _greet_dir(tmp_path)
    for args in (
        ["run", "greet", "-p", "visitor=ada", "--journal", str(folder / "j.db")],
        ["plan", "greet", "-p", "visitor=ada"],
        ["coverage", "greet"],
    ):
        code, imported, out = _sop_in_fresh_process(folder, *args, "--handlers", "greetpack")
        assert code == 0, out
        assert imported == [], (args, imported)


def test_unrelated_sop_never_imports_stripe_in_a_project_listing_the_pack(
    tmp_path: Path,
) -> None:
    """``[tool.sop] handlers`` names the payments pack: described, not loaded, for greet."""
    folder = _greet_dir(
        tmp_path, pyproject='[tool.sop]\nhandlers = ["greetpack", "handlers.payments"]\n'
    )
    for args in (
        ["run", "greet", "-p", "visitor=ada", "--journal", str(folder / "j.db")],
        ["plan", "greet", "-p", "visitor=ada"],
        ["coverage", "greet"],
    ):
        code, imported, out = _sop_in_fresh_process(folder, *args)
        assert code == 0, out
        assert imported == [], (args, imported)


def test_loading_the_payments_pack_does_not_import_stripe(tmp_path: Path) -> None:
    """Planning a payment SOP registers the pack; the SDK waits for the first request."""
    code, imported, out = _sop_in_fresh_process(
        tmp_path, "plan", "payment-processing", *PAYMENT_PLAN
    )
    assert code == 2, out  # STRIPE_API_KEY is not set: a prerequisite, after loading
    assert imported == ["handlers.payments.charges"], out


# ------------------------------------------------------------------ coverage scope


def test_coverage_of_an_unrelated_sop_lists_no_payment_handler(tmp_path: Path) -> None:
    folder = _greet_dir(tmp_path)
    proc = sop_cli(
        "coverage",
        "greet",
        "--format",
        "json",
        "--handlers",
        "greetpack",
        "--handlers",
        "handlers.payments",
        cwd=folder,
        env={"PYTHONPATH": pythonpath(folder)},
        drop=["SOP_PATH"],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    unused = json.loads(proc.stdout)["unused_handlers"]
    assert unused == [], [u["name"] for u in unused]


def test_coverage_of_a_payment_sop_still_lists_its_unused_pack_handlers() -> None:
    """In process: a pack's unscoped handlers serve its SOPs; coverage counts them there."""
    registry = load_handlers(["handlers.payments"])
    greet = parse(GREET, path="greet.sop.md")
    # (the process-wide registry also holds what other in-process tests imported)
    unrelated = [h.name for h in coverage([greet], registry).unused]
    assert not [name for name in unrelated if name.startswith("handlers.payments")], unrelated
    subscription = engine.load("subscription-management")
    unused = {h.name for h in coverage([subscription], registry).unused}
    # a charge-only line of the pack: unscoped, so it serves subscription-management too
    assert "handlers.payments.charges.check_fraud_score" in unused


def test_a_pack_names_its_sops_without_importing_its_handlers() -> None:
    pack = describe("handlers.payments", "test")
    assert pack.sops == frozenset(
        {"payment-processing", "refund-handling", "subscription-management"}
    )
    assert pack.modules and all(m.startswith("handlers.payments.") for m in pack.modules)
    assert pack.wanted(["payment-processing"]) and not pack.wanted(["greet"])
    assert pack_sops("handlers.payments.charges") == pack.sops
    assert pack_sops("greetpack") is None


def test_serves_uses_the_handler_scope_then_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    pack = types.ModuleType("tpack")
    pack.sops = ("alpha",)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tpack", pack)

    def unscoped(ctx: RunContext) -> None:
        pass

    def scoped(ctx: RunContext) -> None:
        pass

    def plain(ctx: RunContext) -> None:
        pass

    unscoped.__module__ = scoped.__module__ = "tpack.handlers"
    plain.__module__ = "plain_module"
    registry = Registry()
    in_pack = registry.add(unscoped, "do one thing")
    own = registry.add(scoped, "do another thing", sop="beta")
    anywhere = registry.add(plain, "do a third thing")
    assert serves(in_pack, "alpha") and not serves(in_pack, "beta")
    assert serves(own, "beta") and not serves(own, "alpha")
    assert serves(anywhere, "alpha") and serves(anywhere, "beta")


def test_payment_handlers_bind_only_the_packs_sops() -> None:
    """The pack scopes every handler: a line of another SOP that reads the same stays free."""
    registry = load_handlers(["handlers.payments"])
    pack = describe("handlers.payments", "test")
    mine = [h for h in registry.handlers() if h.name.startswith("handlers.payments.")]
    assert pack.sops is not None and mine and all(h.sop in pack.sops for h in mine)
    line = "validate all input parameters"
    assert registry.match(line, sop="payment-processing") is not None
    assert registry.match(line, sop="greet") is None


# ------------------------------------------------------------------ commands, templates


def test_sop_sandbox_comes_from_an_entry_point(tmp_path: Path) -> None:
    proc = sop_cli("--help", cwd=tmp_path)
    assert proc.returncode == 0 and "sandbox" in proc.stdout
    proc = sop_cli("sandbox", "--port", "70000", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "sop: error: --port: must be 0..65535 (got 70000)"


def test_notifier_is_shared_across_runs_with_one_configuration(tmp_path: Path) -> None:
    """The notifier owns its compiled templates: one per configuration, not one per run."""
    notifiers = Notifiers()
    env = {"SOP_OUTBOX": str(tmp_path / "outbox")}
    first = notifiers.get(env)
    assert notifiers.get(dict(env)) is first
    assert notifiers.get({"SOP_OUTBOX": str(tmp_path / "other")}) is not first
    context = {
        "amount": 2500,
        "currency": "usd",
        "operation": "charge",
        "transaction_id": "pi_1",
        "customer_name": "Ada",
        "card_last4": "4242",
        "description": "tea",
    }
    one = first.render("receipt", context)
    assert one == first.render("receipt", context)
    assert one[0] == "Your receipt for 25.00 USD" and "Hello Ada," in one[1]


@pytest.mark.parametrize(
    ("descriptor", "message"),
    [
        ('sops = "payment-processing"\n', "sops must be a tuple of names"),
        ('sops = ("a", 3)\n', "sops must be a tuple of names"),
        ('sops = ("a",)\nmodules = ("elsewhere.handlers",)\n', "'elsewhere.handlers' is outside"),
    ],
)
def test_a_malformed_pack_descriptor_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, descriptor: str, message: str
) -> None:
    """A pack that misdeclares what it serves or imports is refused before anything of it
    loads, in one line that names the pack and where it came from."""
    name = f"badpack_{abs(hash(descriptor))}"
    (tmp_path / f"{name}.py").write_text(descriptor, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(HandlerImportError) as info:
        describe(name, "--handlers")
    text = str(info.value)
    assert message in text and f"handler pack {name!r} (--handlers)" in text
    assert "\n" not in text
