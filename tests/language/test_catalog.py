"""The catalog: search order, first found wins, clear errors, reload on edit; `sop list/show`."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest

from engine.errors import UsageError
from engine.language import catalog
from engine.language.resources import builtin_sops_dir
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "sop.schema.json").read_text(encoding="utf-8"))


def write_sop(path: Path, title: str, version: str = "1.0.0", status: str = "Active") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"# {title}\n\n**Version**: {version}\n**Status**: {status}\n\n"
        "## Steps\n\n### 1. Only\n\n**Actions**:\n- MUST do the thing\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory as cwd, with no SOP_PATH."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOP_PATH", raising=False)
    return tmp_path


def test_finds_in_sops_recursively(project: Path) -> None:
    write_sop(project / "sops" / "team" / "deep" / "alpha.sop.md", "Alpha")
    assert catalog.find("alpha") == Path("sops/team/deep/alpha.sop.md")
    assert catalog.load("alpha").title == "Alpha"


def test_search_order_sops_then_sop_path_then_builtins(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = project / "one", project / "two"
    write_sop(one / "beta.sop.md", "Beta from one")
    write_sop(two / "beta.sop.md", "Beta from two")
    write_sop(two / "gamma.sop.md", "Gamma from two")
    monkeypatch.setenv("SOP_PATH", os.pathsep.join([str(one), str(two)]))
    assert catalog.load("beta").title == "Beta from one"
    assert catalog.load("gamma").title == "Gamma from two"
    # built-ins are last: a project may override them
    assert catalog.load("payment-processing").path == str(
        builtin_sops_dir() / "payment-processing.sop.md"
    )
    write_sop(project / "sops" / "payment-processing.sop.md", "Local override")
    assert catalog.load("payment-processing").title == "Local override"
    write_sop(project / "sops" / "beta.sop.md", "Beta local")
    assert catalog.load("beta").title == "Beta local"


def test_unknown_name_lists_what_was_searched(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOP_PATH", str(project / "extra"))
    with pytest.raises(UsageError) as err:
        catalog.load("nope")
    message = str(err.value)
    assert message.startswith("unknown SOP 'nope' (searched: ./sops, ")
    assert str(project / "extra") in message and str(builtin_sops_dir()) in message
    assert "\n" not in message


def test_paths_and_bad_names(project: Path) -> None:
    path = write_sop(project / "elsewhere" / "delta.sop.md", "Delta")
    assert catalog.load(str(path)).name == "delta"
    assert catalog.load("elsewhere/delta.sop.md").title == "Delta"
    with pytest.raises(UsageError, match=re.escape("no such SOP file 'missing.sop.md'")):
        catalog.load("missing.sop.md")
    with pytest.raises(UsageError, match="not a file"):
        catalog.load("elsewhere")
    with pytest.raises(UsageError, match="no SOP given"):
        catalog.load("")
    assert catalog.find("../etc/passwd") is None


def test_cache_reloads_edited_files(project: Path) -> None:
    path = write_sop(project / "sops" / "eps.sop.md", "Eps", version="1.0.0")
    first = catalog.load("eps")
    assert catalog.load("eps") is first  # unchanged file: not parsed again
    write_sop(path, "Eps", version="1.0.1")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = catalog.load("eps")
    assert second is not first and second.version == "1.0.1"


def test_entries_first_name_wins(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = project / "extra"
    write_sop(project / "sops" / "zeta.sop.md", "Zeta", version="2.0.0", status="Draft")
    write_sop(extra / "zeta.sop.md", "Zeta shadowed")
    monkeypatch.setenv("SOP_PATH", str(extra))
    found = {e.name: e for e in catalog.entries()}
    assert found["zeta"].title == "Zeta"
    assert (found["zeta"].version, found["zeta"].status) == ("2.0.0", "Draft")
    assert found["zeta"].path == Path("sops/zeta.sop.md")
    assert "payment-processing" in found
    names = [e.name for e in catalog.entries()]
    assert names == sorted(names)


# ----------------------------------------------------------------------------- CLI


def sop(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return sop_cli(*args, cwd=cwd, env=env, drop=["SOP_PATH"], timeout=60)


def test_cli_list_text_and_json(tmp_path: Path) -> None:
    write_sop(tmp_path / "sops" / "eta.sop.md", "Eta Procedure", version="3.1.0", status="Draft")
    text = sop(tmp_path, "list")
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines()[0].split() == ["NAME", "TITLE", "VERSION", "STATUS", "PATH"]
    row = next(line for line in text.stdout.splitlines() if line.startswith("eta "))
    assert "Eta Procedure" in row and "3.1.0" in row and "Draft" in row
    assert row.rstrip().endswith(str(Path("sops/eta.sop.md")))
    listed = json.loads(sop(tmp_path, "list", "--json").stdout)
    catalog_schema = json.loads((ROOT / "schemas" / "catalog.schema.json").read_text("utf-8"))
    jsonschema.validate(listed, catalog_schema)
    eta = next(e for e in listed if e["name"] == "eta")
    assert eta == {
        "name": "eta",
        "title": "Eta Procedure",
        "version": "3.1.0",
        "status": "Draft",
        "path": str(Path("sops/eta.sop.md")),
    }


def test_cli_show_text_lists_actions_with_lines() -> None:
    result = sop(ROOT, "show", "payment-processing")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Payment Processing SOP" in out and "Version: 1.0.0" in out
    assert "L53   MUST       verify customer_id exists in Stripe" in out
    assert "L129  MUST NOT   retry payment failures (only network/timeout errors)" in out
    assert "L161  MUST NOT   log full card numbers or CVV" in out
    assert "branch For Charges -> operation=charge" in out


def test_cli_show_json_validates(tmp_path: Path) -> None:
    result = sop(ROOT, "show", "sops/payment-processing.sop.md", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    jsonschema.validate(data, SCHEMA)
    assert data["name"] == "payment-processing"
    assert [s["number"] for s in data["steps"]] == [1, 2, 3, 4, 5]


def test_cli_show_unknown_is_one_line_exit_2(tmp_path: Path) -> None:
    result = sop(tmp_path, "show", "no-such-sop")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("sop: error: unknown SOP 'no-such-sop' (searched: ./sops")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_show_broken_file_reports_diagnostics(tmp_path: Path) -> None:
    bad = tmp_path / "broken.sop.md"
    bad.write_bytes(b"# Broken\n\n## Steps\n\xff\xfe\n")
    result = sop(tmp_path, "show", str(bad))
    assert result.returncode == 0, result.stderr
    assert "SOP002" in result.stdout and "Traceback" not in result.stderr
    as_json = sop(tmp_path, "show", str(bad), "--json")
    assert as_json.returncode == 0
    codes = [d["code"] for d in json.loads(as_json.stdout)["diagnostics"]]
    assert "SOP002" in codes


def test_a_cached_sop_keeps_the_path_it_was_loaded_by(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading one file as 'sops/x.sop.md' must not hand a later absolute lookup that path."""
    write_sop(project / "sops" / "delta.sop.md", "Delta")
    relative = catalog.load("sops/delta.sop.md")
    absolute = catalog.load(str(project / "sops" / "delta.sop.md"))
    assert relative.path == "sops/delta.sop.md"
    assert absolute.path == str(project / "sops" / "delta.sop.md")
    assert catalog.load("sops/delta.sop.md") is relative  # still cached
