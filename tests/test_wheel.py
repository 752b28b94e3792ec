"""A wheel built from the project works from another directory, with no checkout in sight.

The wheel is built and installed for real (pip, no network: dependencies come from
the test environment through a .pth file, so the check is the wheel's own contents:
package data for the built-in SOPs and the schemas, and the console script).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_NOT_SOURCE = (".git", ".venv", "build", "dist", "*.egg-info", ".sop", "__pycache__", ".*_cache")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    dist = work / "dist"
    source = work / "src"  # build from a copy: an in-tree build leaves build/ and egg-info
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    wheels = list(dist.glob("sop_engine-*.whl"))
    assert len(wheels) == 1, wheels
    env_dir = work / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheels[0]),
        ],
        check=True,
        capture_output=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # Dependencies (mistune, yaml, jsonschema, ...) from the test environment, not the checkout.
    (Path(site) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return env_dir


def _sop(env_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(env_dir / "bin" / "sop"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    )


def test_engine_comes_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run(
        [str(installed / "bin" / "python"), "-c", "import engine; print(engine.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(installed) in out and str(ROOT) not in out


def test_show_finds_builtin_sop_and_schema(installed: Path, tmp_path: Path) -> None:
    proc = _sop(installed, tmp_path, "show", "payment-processing", "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["name"] == "payment-processing"
    assert len(shown["steps"]) == 5


def test_lint_a_file_elsewhere(installed: Path, tmp_path: Path) -> None:
    sop = tmp_path / "hello.sop.md"
    sop.write_text(
        "# Hello\n\n## Overview\n\nSay hello.\n\n"
        "## Steps\n\n### 1. Greet\n\n**Actions**:\n- MUST say hello\n"
    )
    proc = _sop(installed, tmp_path, "lint", str(sop))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_release_pack_binds_its_runbook_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    """The pack ships (package list) and is found by its entry point, from any folder."""
    proc = _sop(installed, tmp_path, "plan", "release-runbook", "-p", "repo=.", "-p",
                "version=1.0.0", "--json")  # fmt: skip
    handlers = {
        b["handler"]["name"].rpartition(".")[0]
        for b in json.loads(proc.stdout)["bindings"]
        if b["status"] == "bound"
    }
    assert handlers == {"handlers.release.checks"}, proc.stderr
