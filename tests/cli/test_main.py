"""The command line's own contract: usage errors and missing optional packages are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# A real subprocess in which the optional package cannot be imported (as if not installed).
_WITHOUT = (
    "import sys; sys.modules[{mod!r}] = None; "
    "from engine.cli.main import main; sys.exit(main({argv!r}))"
)


@pytest.mark.parametrize(
    ("module", "argv", "extra"),
    [
        ("localstripe", ["sandbox", "--port", "0"], "sandbox"),
        ("aiohttp", ["sandbox", "--port", "0"], "sandbox"),
        ("mcp", ["mcp"], "mcp"),
    ],
)
def test_a_missing_optional_package_names_the_extra(
    module: str, argv: list[str], extra: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT.format(mod=module, argv=argv)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert f"sop-engine[{extra}]" in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("sop: error: sop: argument command: invalid choice: 'frobnicate'")
    assert done.stderr.count("\n") == 1


def _sop(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *argv], capture_output=True, text=True, timeout=60
    )


def test_help_lists_every_command_and_a_command_takes_only_its_own_options() -> None:
    """The parser builds only the invoked command (start-up cost); what a user sees is
    unchanged: -h before a command word is the main help, after it the command's own."""
    main_help = _sop("-h", "lint")
    assert main_help.returncode == 0
    for name in ("lint", "run", "resume", "report", "worker", "rule"):
        assert f"\n    {name} " in main_help.stdout
    lint_help = _sop("--journal", "x.db", "lint", "--help")
    assert lint_help.stdout.startswith("usage: sop lint ")
    assert "--strict" in lint_help.stdout and "--confirm" not in lint_help.stdout
    foreign = _sop("lint", "--confirm", "tok")  # run's option, not lint's
    assert foreign.returncode == 2
    assert foreign.stderr == "sop: error: sop: unrecognized arguments: --confirm\n"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SOP_ACTION_TIMEOUT_SECONDS", "soon"),
        ("SOP_ACTION_TIMEOUT_SECONDS", "-1"),
        ("SOP_RETRY_BASE_SECONDS", "nan"),
        ("SOP_CONFIRM_TTL_SECONDS", "0"),
    ],
)
def test_settings_value_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    from engine.errors import UsageError
    from engine.execution import confirm, retry, runner

    read = {
        "SOP_ACTION_TIMEOUT_SECONDS": runner.action_timeout_default,
        "SOP_RETRY_BASE_SECONDS": retry.base_delay,
        "SOP_CONFIRM_TTL_SECONDS": confirm.ttl_seconds,
    }[name]
    monkeypatch.setenv(name, value)
    with pytest.raises(UsageError, match=rf"^{name}='{value}': expected a number of seconds"):
        read()


def test_settings_defaults_and_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.execution import confirm, retry, runner

    for name in ("SOP_ACTION_TIMEOUT_SECONDS", "SOP_RETRY_BASE_SECONDS", "SOP_CONFIRM_TTL_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    assert (runner.action_timeout_default(), retry.base_delay(), confirm.ttl_seconds()) == (
        runner.DEFAULT_ACTION_TIMEOUT,
        0.5,
        confirm.DEFAULT_TTL,
    )
    monkeypatch.setenv("SOP_ACTION_TIMEOUT_SECONDS", "0")  # 0 = no timeout
    assert runner.action_timeout_default() == 0


def test_bad_setting_stops_a_run_before_any_handler(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "tiny.sop.md").write_text(
        "# Tiny\n\n## Overview\n\nx\n\n"
        "## Steps\n\n### 1. Do\n\n**Actions**:\n- MUST touch the file\n"
    )
    (tmp_path / "tiny_handlers.py").write_text(
        "from pathlib import Path\nfrom engine import action\n\n"
        "@action('touch the file')\ndef touch(ctx):\n    Path('touched').touch()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SOP_ACTION_TIMEOUT_SECONDS": "soon"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.cli.main",
            "run",
            "tiny",
            "--handlers",
            "tiny_handlers",
            "--journal",
            str(tmp_path / "j.db"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == (
        "sop: error: SOP_ACTION_TIMEOUT_SECONDS='soon': expected a number of seconds "
        ">= 0 (no timeout at 0)\n"
    )
    assert not (tmp_path / "touched").exists()
