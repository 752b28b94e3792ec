"""Global options (``--handlers``, ``--journal``, ``--debug``) before or after the command.

Issue 9, defect 8: given before the command name they used to be silently dropped
(argparse let the subcommand's defaults overwrite them). Real ``sop`` subprocesses.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import pythonpath, sop_cli

TINY = (
    "# Tiny\n\n## Overview\n\nTwo files.\n\n## Steps\n\n### 1. Touch\n\n**Actions**:\n"
    "- MUST touch the first file\n- MUST touch the second file\n"
)


def _handler(name: str, line: str, file: str) -> str:
    return (
        "from pathlib import Path\nfrom engine import action\n\n"
        f"@action({line!r})\ndef {name}(ctx):\n    Path({file!r}).touch()\n"
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory with the tiny SOP and one handler module per line (first_h, second_h)."""
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "tiny.sop.md").write_text(TINY)
    (tmp_path / "first_h.py").write_text(_handler("first", "touch the first file", "first"))
    (tmp_path / "second_h.py").write_text(_handler("second", "touch the second file", "second"))
    return tmp_path


def _sop(project: Path, *args: str) -> tuple[int, str, str]:
    done = sop_cli(
        *args, cwd=project, env={"PYTHONPATH": pythonpath(project)}, drop=["SOP_JOURNAL"]
    )
    return done.returncode, done.stdout, done.stderr


def _runs(journal: Path) -> int:
    with sqlite3.connect(journal) as db:
        count: int = db.execute("SELECT count(*) FROM runs").fetchone()[0]
    return count


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (["--handlers", "first_h", "--handlers", "second_h"], []),
        ([], ["--handlers", "first_h", "--handlers", "second_h"]),
        (["--handlers", "first_h"], ["--handlers", "second_h"]),  # both places add up
    ],
    ids=["before", "after", "both"],
)
def test_handlers_before_or_after_the_command(
    project: Path, before: list[str], after: list[str]
) -> None:
    journal = project / "j.db"
    code, out, err = _sop(project, *before, "run", "tiny", "--journal", str(journal), *after)
    assert code == 0, out + err
    assert (project / "first").exists() and (project / "second").exists()


@pytest.mark.parametrize("where", ["before", "after", "both"])
def test_journal_before_or_after_the_command(project: Path, where: str) -> None:
    journal = project / "elsewhere.db"
    option = ["--journal", str(journal)]
    handlers = ["--handlers", "first_h", "--handlers", "second_h"]
    before = option if where in ("before", "both") else []
    after = option if where in ("after", "both") else []
    code, out, err = _sop(project, *before, "run", "tiny", *handlers, *after)
    assert code == 0, out + err
    assert _runs(journal) == 1
    assert not (project / ".sop").exists()  # the default journal was not touched
    code, out, err = _sop(project, *before, "runs", *after)
    assert code == 0 and "tiny" in out, out + err


def test_two_different_journals_are_a_usage_error(project: Path) -> None:
    one, two = project / "one.db", project / "two.db"
    handlers = ["--handlers", "first_h", "--handlers", "second_h"]
    code, _, err = _sop(
        project, "--journal", str(one), "run", "tiny", *handlers, "--journal", str(two)
    )
    assert code == 2
    assert err.startswith("sop: error: --journal given twice") and err.count("\n") == 1
    assert str(one) in err and str(two) in err
    assert not one.exists() and not two.exists() and not (project / ".sop").exists()
    assert not (project / "first").exists()


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_before_or_after_the_command(project: Path, where: str) -> None:
    args = ["run", "tiny", "--handlers", "no_such_module", "--journal", str(project / "j.db")]
    code, _, err = _sop(project, *args)
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    args = ["--debug", *args] if where == "before" else [*args, "--debug"]
    code, _, err = _sop(project, *args)
    assert code == 1 and "Traceback" in err and "no_such_module" in err
