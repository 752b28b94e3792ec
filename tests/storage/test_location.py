"""Where the default journal lives (engine.storage.location), through the real CLI.

One journal per project whatever the current folder (running from ``sops/`` used to
create ``sops/.sop/journal.db``), the user's data directory outside a project, and no
journal at all for a run refused before it starts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import engine
from engine.errors import ParameterError, PlanRefused, SopError
from engine.storage.location import default_path, project_root
from tests.support.cli import pythonpath, sop_cli

SOP = """\
# Note Taker

**Version**: 1.0.0

## Overview

Writes a note.

## Parameters

### Required

- **note** (string): The note

## Steps

### 1. Note

**Actions**:
- MUST write the note
"""

UNBOUND = SOP.replace("- MUST write the note", "- MUST do what nobody can")

HANDLERS = """\
from engine.binding.registry import action


@action("write the note")
def write(ctx):
    ctx.record("note", {"note": ctx.params["note"]})
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "sops").mkdir(parents=True)
    (root / "sops" / "note-taker.sop.md").write_text(SOP, encoding="utf-8")
    (root / "sops" / "unbound.sop.md").write_text(UNBOUND, encoding="utf-8")
    (root / "sops" / "lint-error.sop.md").write_text(
        SOP.replace("## Steps", "## Step"),
        encoding="utf-8",  # SOP106: drops the MUST
    )
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "note_handlers.py").write_text(HANDLERS, encoding="utf-8")
    return root


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A home and data directory of the test's own; no SOP_JOURNAL."""
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHONPATH": pythonpath(tmp_path / "lib"),
    }
    env.update(extra)
    return env


def _sop(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return sop_cli(*args, "--handlers", "note_handlers", cwd=cwd, env=env, drop=["SOP_JOURNAL"])


def _journals(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.rglob("journal.db"))


def test_project_root_is_the_nearest_folder_with_pyproject_or_sops(tmp_path: Path) -> None:
    (tmp_path / "a" / "sops" / "deep").mkdir(parents=True)
    (tmp_path / "b" / "src").mkdir(parents=True)
    (tmp_path / "b" / "pyproject.toml").write_text("[project]\nname='b'\n", encoding="utf-8")
    assert project_root(tmp_path / "a" / "sops" / "deep") == tmp_path / "a"
    assert project_root(tmp_path / "b" / "src") == tmp_path / "b"
    assert default_path(tmp_path / "a" / "sops") == tmp_path / "a" / ".sop" / "journal.db"


def test_outside_a_project_the_journal_is_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOP_JOURNAL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert project_root(tmp_path) is None  # nothing up from pytest's tmp folders
    assert default_path(tmp_path) == tmp_path / "data" / "sop-engine" / "journal.db"
    monkeypatch.delenv("XDG_DATA_HOME")
    expected = tmp_path / "home" / ".local" / "share" / "sop-engine" / "journal.db"
    assert default_path(tmp_path) == expected
    monkeypatch.setenv("SOP_JOURNAL", str(tmp_path / "mine.db"))
    assert default_path(tmp_path) == tmp_path / "mine.db"


def test_a_run_from_sops_uses_the_projects_journal(project: Path, tmp_path: Path) -> None:
    env = _env(tmp_path)
    ran = _sop(project / "sops", "run", "note-taker.sop.md", "-p", "note=hi", env=env)
    assert ran.returncode == 0, ran.stderr
    assert _journals(tmp_path) == [project / ".sop" / "journal.db"]
    listed = _sop(project, "runs", "--json", env=env)  # the root sees the same journal
    assert [run["sop"] for run in json.loads(listed.stdout)] == ["note-taker"]


def test_a_run_outside_a_project_uses_the_data_directory(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sop_file = str(project / "sops" / "note-taker.sop.md")
    ran = _sop(elsewhere, "run", sop_file, "-p", "note=hi", env=_env(tmp_path))
    assert ran.returncode == 0, ran.stderr
    assert _journals(tmp_path) == [tmp_path / "data" / "sop-engine" / "journal.db"]
    env = _env(tmp_path)
    del env["XDG_DATA_HOME"]
    ran = sop_cli(
        "run",
        sop_file,
        "-p",
        "note=again",
        "--handlers",
        "note_handlers",
        cwd=elsewhere,
        env=env,
        drop=["SOP_JOURNAL", "XDG_DATA_HOME"],
    )
    assert ran.returncode == 0, ran.stderr
    assert tmp_path / "home" / ".local" / "share" / "sop-engine" / "journal.db" in _journals(
        tmp_path
    )


def test_sop_journal_and_the_flag_still_override(project: Path, tmp_path: Path) -> None:
    env = _env(tmp_path, SOP_JOURNAL=str(tmp_path / "env.db"))
    ran = sop_cli(
        "run", "note-taker", "-p", "note=1", "--handlers", "note_handlers", cwd=project, env=env
    )
    assert ran.returncode == 0, ran.stderr
    flag = ["--journal", str(tmp_path / "flag.db")]
    ran = _sop(project, "run", "note-taker", "-p", "note=2", *flag, env=_env(tmp_path))
    assert ran.returncode == 0, ran.stderr
    assert _journals(tmp_path) == []  # named files, not journal.db anywhere
    assert (tmp_path / "env.db").is_file() and (tmp_path / "flag.db").is_file()


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["no-such-sop"], 2),  # unknown SOP
        (["note-taker"], 2),  # the required parameter missing
        (["unbound", "-p", "note=x"], 1),  # an unbound MUST
        (["lint-error", "-p", "note=x"], 1),  # a lint error
    ],
    ids=["unknown", "bad-params", "unbound", "lint-error"],
)
def test_a_run_refused_before_it_starts_creates_no_journal(
    project: Path, tmp_path: Path, args: list[str], code: int
) -> None:
    done = _sop(project, "run", *args, env=_env(tmp_path))
    assert done.returncode == code, (done.stdout, done.stderr)
    assert _journals(tmp_path) == []


def test_the_api_refuses_without_creating_a_journal(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOP_JOURNAL", raising=False)
    monkeypatch.chdir(project)
    registry = engine.Registry()
    registry.action("write the note")(lambda ctx: None)
    with pytest.raises(PlanRefused):
        engine.run("unbound", {"note": "x"}, registry=registry)
    with pytest.raises(ParameterError):
        engine.run("note-taker", {}, registry=registry)
    with pytest.raises(SopError):
        engine.run("no-such-sop", {}, registry=registry)
    assert _journals(tmp_path) == []
    assert engine.run("note-taker", {"note": "x"}, registry=registry).ok
    assert _journals(tmp_path) == [project / ".sop" / "journal.db"]


def test_a_database_url_stays_the_string_it_was_written_as(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.storage.location import chosen, database_url

    socket = "postgresql:///payments?host=/run/postgresql"
    assert chosen(socket) == socket and database_url(socket) == socket
    assert chosen("j.db") == Path("j.db") and database_url(Path("j.db")) is None
    assert database_url("postgresql:/payments") is None  # one slash: a file name, not a URL
    monkeypatch.setenv("SOP_JOURNAL", socket)
    assert default_path() == chosen() == socket
    monkeypatch.setenv("SOP_JOURNAL", str(tmp_path / "j.db"))
    assert default_path() == tmp_path / "j.db"
