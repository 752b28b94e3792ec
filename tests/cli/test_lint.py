"""``sop lint`` / ``graph`` / ``schema`` as real subprocesses; bad files never give a traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"


def sop(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return sop_cli(*args, cwd=cwd, env={"PYTHONPATH": str(ROOT)}, drop=["SOP_PATH"])


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    """The seed under another name: no overlay, no related files, so it has a lint error."""
    path = tmp_path / "seed-copy.sop.md"
    shutil.copy(SEED, path)
    return path


def test_text_output_and_exit_code(seed_copy: Path) -> None:
    result = sop("lint", str(seed_copy))
    assert result.returncode == 1
    assert f"{seed_copy}:192:1: SOP130 " in result.stdout
    assert f"{seed_copy}:80:1: SOP140 " in result.stdout
    assert "Found 1 error(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_project_seed_passes_unless_strict() -> None:
    result = sop("lint", "sops/payment-processing.sop.md")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SOP140" in result.stdout
    strict = sop("lint", "--strict", "sops/payment-processing.sop.md")
    assert strict.returncode == 1


def test_json_format(seed_copy: Path) -> None:
    result = sop("lint", "--format", "json", str(seed_copy))
    assert result.returncode == 1
    items = json.loads(result.stdout)
    schema = json.loads((ROOT / "schemas" / "lint.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema).validate(items)
    assert {"path", "line", "col", "code", "severity", "message"} == set(items[0])
    assert {"code": "SOP130", "line": 192, "severity": "error"}.items() <= next(
        i for i in items if i["code"] == "SOP130"
    ).items()


def test_github_format(seed_copy: Path) -> None:
    result = sop("lint", "--format", "github", str(seed_copy))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    error = next(line for line in lines if "title=SOP130" in line)
    assert error.startswith(f"::error file={seed_copy},line=192,col=1,title=SOP130::")
    assert any(line.startswith("::warning ") for line in lines)
    assert any(line.startswith("::notice ") for line in lines)


def test_default_is_sops_dir(tmp_path: Path) -> None:
    (tmp_path / "sops" / "team").mkdir(parents=True)
    shutil.copy(SEED, tmp_path / "sops" / "team" / "seed-copy.sop.md")
    result = sop("lint", cwd=tmp_path)
    assert result.returncode == 1
    assert "sops/team/seed-copy.sop.md:192:1: SOP130" in result.stdout


def test_clean_file_says_all_checks_passed(tmp_path: Path) -> None:
    path = tmp_path / "clean.sop.md"
    path.write_text(
        textwrap.dedent(
            """\
            # Clean

            ## Overview

            A tiny procedure.

            ## Steps

            ### 1. Greet

            **Actions**:
            - MUST say hello
            """
        ),
        encoding="utf-8",
    )
    result = sop("lint", str(path))
    assert result.returncode == 0, result.stdout
    assert result.stdout == ""
    assert "All checks passed (1 file(s))." in result.stderr


BAD: dict[str, bytes] = {
    "empty": b"",
    "binary": bytes(range(256)) * 4,
    "latin1": "# R\u00e9sum\u00e9\n\n## Overview\n\ncaf\u00e9\n".encode("latin-1"),
    "ten-mb": b"# Big\n\n## Steps\n\n" + b"- MUST do a thing again and again\n" * 300_000,
    # 1,990 deep: the lines stay within the parser's MAX_LINE (4,000 characters)
    "nested-1990": b"# N\n\n## Overview\n\nx\n\n## Steps\n\n### 1. A\n\n**Actions**:\n"
    + b"- " * 1990
    + b"MUST x\n",
    "indented-1990": b"# N\n\n## Steps\n\n### 1. A\n\n"
    + b"".join(b"  " * i + b"- MUST nest\n" for i in range(1990)),
    "heading-only": b"# Only a heading\n",
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_is_a_diagnostic_not_a_crash(tmp_path: Path, kind: str) -> None:
    path = tmp_path / f"{kind}.sop.md"
    path.write_bytes(BAD[kind])
    result = sop("lint", str(path))
    assert result.returncode == 1, (kind, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr + result.stdout
    assert result.stdout.startswith(f"{path}:")
    assert " error(s)" in result.stderr


def test_bad_inputs_together_as_json(tmp_path: Path) -> None:
    for kind, data in BAD.items():
        (tmp_path / f"{kind}.sop.md").write_bytes(data)
    result = sop("lint", "--format", "json", str(tmp_path))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    items = json.loads(result.stdout)
    errors = {Path(i["path"]).name for i in items if i["severity"] == "error"}
    assert errors == {f"{kind}.sop.md" for kind in BAD}
    assert not [i for i in items if i["code"] in ("SOP199", "SOP099")]


def test_a_catalog_name_works_as_a_path() -> None:
    result = sop("lint", "payment-processing")
    assert result.returncode == 0
    assert "payment-processing.sop.md:80:1: SOP140" in result.stdout


def test_missing_path_is_a_diagnostic(tmp_path: Path) -> None:
    result = sop("lint", str(tmp_path / "nope.sop.md"))
    assert result.returncode == 1
    assert "SOP190" in result.stdout


def test_graph_formats() -> None:
    mermaid = sop("graph", "payment-processing")
    assert mermaid.returncode == 0, mermaid.stderr
    assert mermaid.stdout.startswith("flowchart TD\n")
    dot = sop("graph", "payment-processing", "--format", "dot")
    assert dot.stdout.startswith('digraph "payment-processing" {')
    graph = json.loads(sop("graph", "payment-processing", "--format", "json").stdout)
    schema = json.loads((ROOT / "schemas" / "graph.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator(schema).validate(graph)
    by_path = sop("graph", str(SEED), "--format", "json")
    assert json.loads(by_path.stdout) == graph


def test_schema_command() -> None:
    result = sop("schema", "payment-processing")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["amount"]["maximum"] == 99999999
    assert schema["additionalProperties"] is False


def test_unknown_name_is_a_usage_error() -> None:
    for command in ("graph", "schema"):
        result = sop(command, "no-such-sop")
        assert result.returncode == 2
        assert result.stderr.startswith("sop: error: ") and "no-such-sop" in result.stderr
        assert "Traceback" not in result.stderr


def test_author_commands_never_import_stripe_or_handlers() -> None:
    script = textwrap.dedent(
        """
        import contextlib, io, json, sys
        from engine.cli.main import main
        codes = {}
        for argv in (["list"], ["show", "payment-processing"], ["lint", "sops"],
                     ["graph", "payment-processing"], ["schema", "payment-processing"]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                codes[argv[0]] = main(argv)
            heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("stripe", "handlers"))
            assert not heavy, (argv, heavy[:5])
        print(json.dumps(codes))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    codes = json.loads(result.stdout)
    assert codes == {"list": 0, "show": 0, "lint": 0, "graph": 0, "schema": 0}
