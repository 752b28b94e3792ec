"""`sop plan`, `sop coverage`, `sop stub` and `pytest --sop-coverage`, run as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest

from engine.language.resources import load_schema
from tests.support.cli import sop_cli
from tests.support.sops import MINI

HANDLERS = """\
from engine.binding.registry import action, check


@action("verify customer exists")
def verify(ctx):
    pass


@action("set appropriate timeout ({seconds:d} seconds)")
def timeout(ctx, seconds):
    pass


@action("old line nobody writes any more")
def unused(ctx):
    pass
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with one SOP, a pyproject naming its handler module, and that module."""
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "mini.sop.md").write_text(MINI)
    (tmp_path / "pyproject.toml").write_text('[tool.sop]\nhandlers = ["hpack.main"]\n')
    (tmp_path / "hpack").mkdir()
    (tmp_path / "hpack" / "__init__.py").write_text("")
    (tmp_path / "hpack" / "main.py").write_text(HANDLERS)
    return tmp_path


def sop(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    extra = {"MINI_TOKEN": "token"} if env is None else env
    return sop_cli(*args, cwd=project, env=extra, drop=["SOP_PATH", "MINI_TOKEN"], timeout=60)


def test_plan_text_lists_lines_and_refuses_unbound_musts(project: Path) -> None:
    proc = sop(project, "plan", "mini", "-p", "operation=refund", "-p", "amount=500")
    assert proc.returncode == 1
    out = proc.stdout
    assert "MUST       verify customer exists  -> hpack.main.verify" in out
    assert "-> hpack.main.timeout(seconds=30)" in out
    assert "send a postcard  will be skipped: no handler" in out
    assert "will be skipped: branch 'For Charges' not selected (operation=refund)" in out
    assert proc.stderr.splitlines() == [
        "sops/mini.sop.md:42: MUST NOT log full card numbers",
        "sops/mini.sop.md:35: MUST require confirmation for refunds > $100",
        "sops/mini.sop.md:38: MUST Amount is positive",
    ]


def test_plan_json_is_schema_valid(project: Path) -> None:
    proc = sop(project, "plan", "mini", "-p", "operation=charge", "-p", "amount=5", "--json")
    data = json.loads(proc.stdout)
    jsonschema.validate(data, load_schema("plan.schema.json"))
    assert data["ok"] is False and "sops/mini.sop.md:32" in data["unbound"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan", "nosuch"), "unknown SOP 'nosuch'"),
        (("plan", "mini", "-p", "operation=dance"), "invalid parameters: operation: 'dance'"),
        (("coverage", "nosuch"), "unknown SOP 'nosuch'"),
        (("stub", "nosuch"), "unknown SOP 'nosuch'"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    project: Path, args: tuple[str, ...], message: str
) -> None:
    proc = sop(project, *args)
    assert proc.returncode == 2
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def test_missing_environment_variable_exits_2(project: Path) -> None:
    proc = sop(project, "plan", "mini", "-p", "operation=charge", env={})
    assert proc.returncode == 2 and "MINI_TOKEN" in proc.stderr


def test_broken_handler_module_is_one_line(project: Path) -> None:
    (project / "hpack" / "main.py").write_text(
        "from engine.binding.registry import action\n\nraise RuntimeError('boom')\n"
    )
    proc = sop(project, "coverage", "mini")
    assert proc.returncode == 1
    assert "cannot import handler module 'hpack.main'" in proc.stderr
    assert "main.py:3" in proc.stderr and "Traceback" not in proc.stderr


def test_ambiguous_handlers_reported_with_both_locations(project: Path) -> None:
    extra = project / "hpack" / "dup.py"
    extra.write_text(
        "from engine.binding.registry import action\n\n\n"
        "@action('Verify `customer` exists.')\ndef again(ctx):\n    pass\n"
    )
    proc = sop(project, "plan", "mini", "-p", "operation=charge", "--handlers", "hpack.dup")
    assert proc.returncode == 1
    assert f"{project / 'hpack' / 'main.py'}:4" in proc.stderr
    assert f"{extra}:4" in proc.stderr


def test_coverage_text_json_junit_and_strict(project: Path) -> None:
    proc = sop(project, "coverage", "mini")
    assert proc.returncode == 1
    assert (
        "mini (sops/mini.sop.md): MUST 1/3  SHOULD 1/1  MAY 0/1  checks 0/1  guards 0/1"
        in proc.stdout
    )
    assert "FAIL sops/mini.sop.md:38: MUST Amount is positive" in proc.stdout
    assert "hpack.main.unused 'old line nobody writes any more'" in proc.stdout

    data = json.loads(sop(project, "coverage", "mini", "--format", "json").stdout)
    jsonschema.validate(data, load_schema("coverage.schema.json"))
    assert [h["name"] for h in data["unused_handlers"]] == ["hpack.main.unused"]

    junit = sop(project, "coverage", "mini", "--format", "junit")
    assert junit.returncode == 1
    suite = ET.fromstring(junit.stdout).find("testsuite")
    assert suite is not None and suite.get("tests") == "7" and suite.get("failures") == "4"


def test_stub_round_trip_binds_every_line(project: Path) -> None:
    stub = sop(project, "stub", "mini")
    assert stub.returncode == 0
    assert "def set_appropriate_timeout" not in stub.stdout  # already bound
    assert "@action('require confirmation for refunds > ${amount:d}', sop='mini')" in stub.stdout
    assert (
        "def require_confirmation_for_refunds(ctx: RunContext, amount: int) -> None:" in stub.stdout
    )
    (project / "hpack" / "stubbed.py").write_text(stub.stdout)
    proc = sop(project, "coverage", "mini", "--strict", "--handlers", "hpack.stubbed")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "MUST 3/3  SHOULD 1/1  MAY 1/1  checks 1/1  guards 1/1  [ok]" in proc.stdout
    again = sop(project, "stub", "mini", "--handlers", "hpack.stubbed")
    assert "nothing to stub" in again.stdout
    plan = sop(project, "plan", "mini", "-p", "operation=charge", "--handlers", "hpack.stubbed")
    assert plan.returncode == 0


def test_stub_for_seed_sop_is_valid_python_with_typed_placeholders(project: Path) -> None:
    proc = sop(project, "stub", "payment-processing")
    assert proc.returncode == 0
    compile(proc.stdout, "stub.py", "exec")  # syntax check only
    assert (
        "require confirmation for refunds > ${amount:d}', sop='payment-processing')" in proc.stdout
    )
    assert "def require_confirmation_for_refunds(ctx: RunContext, amount: int)" in proc.stdout
    assert "def never_log_full_card_numbers_or_cvv(ctx: RunContext) -> None:" in proc.stdout
    assert "def set_appropriate_timeout" not in proc.stdout  # bound by hpack.main


def test_pytest_sop_coverage_option(project: Path) -> None:
    (project / "tests").mkdir()
    (project / "tests" / "test_nothing.py").write_text("def test_ok():\n    assert True\n")
    environ = {k: v for k, v in os.environ.items() if k != "SOP_PATH"}
    run = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    plain = subprocess.run(
        run, cwd=project, env=environ, capture_output=True, text=True, timeout=120
    )
    assert plain.returncode == 0 and "1 passed" in plain.stdout
    proc = subprocess.run(
        [*run, "--sop-coverage", "--sop", "mini"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "sop-coverage[mini]" in proc.stdout and "1 failed, 1 passed" in proc.stdout
    assert "sops/mini.sop.md:35: MUST require confirmation for refunds > $100" in proc.stdout
    assert "send a postcard" not in proc.stdout  # MAY lines do not fail coverage
    (project / "hpack" / "stubbed.py").write_text(sop(project, "stub", "mini").stdout)
    proc = subprocess.run(
        [*run, "--sop-coverage", "--sop", "mini", "--sop-handlers", "hpack.stubbed"],
        cwd=project,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and "2 passed" in proc.stdout, proc.stdout


def test_several_invalid_parameters_exit_2_all_in_one_line(project: Path) -> None:
    proc = sop(project, "plan", "mini", "-p", "operation=dance", "-p", "amount=0")
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    head, _, rest = line.partition(": invalid parameters: ")
    assert head == "sop: error"
    assert [p.partition(":")[0] for p in rest.split("; ")] == ["amount", "operation"]
