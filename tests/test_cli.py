"""The command line's own contract: usage errors and missing optional packages are one line."""

from __future__ import annotations

import subprocess
import sys

import pytest

# A real subprocess in which the optional package cannot be imported (as if not installed).
_WITHOUT = (
    "import sys; sys.modules[{mod!r}] = None; from engine.cli import main; sys.exit(main({argv!r}))"
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
        [sys.executable, "-m", "engine.cli", "frobnicate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("sop: error: sop: argument command: invalid choice: 'frobnicate'")
    assert done.stderr.count("\n") == 1
