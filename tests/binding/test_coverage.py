"""coverage() and stub generation: counts, unbound lines, unused handlers, junit, round trip."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine.binding.registry as registry_module
from engine.binding.coverage import coverage
from engine.binding.normalize import clean
from engine.binding.patterns import parse_pattern
from engine.binding.registry import Registry
from engine.binding.stub import pattern_for, render
from engine.language.parser import parse
from engine.language.resources import load_schema
from engine.model import Sop
from tests.support.sops import MINI


@pytest.fixture
def sop() -> Sop:
    return parse(MINI, path="sops/mini.sop.md")


def _partial() -> Registry:
    reg = Registry()

    @reg.action("verify customer exists")
    def verify(ctx: Any) -> None: ...

    @reg.action("set appropriate timeout ({seconds:d} seconds)")
    def timeout(ctx: Any, seconds: int) -> None: ...

    @reg.action("never matches anything here")
    def unused(ctx: Any) -> None: ...

    @reg.action("scoped elsewhere", sop="other-sop")
    def elsewhere(ctx: Any) -> None: ...

    return reg


def test_counts_unbound_and_unused(sop: Sop) -> None:
    report = coverage([sop], _partial())
    (one,) = report.sops
    assert one.counts() == {
        "must": (1, 3),  # verify bound; both branch MUSTs unbound (coverage ignores branches)
        "should": (1, 1),
        "may": (0, 1),
        "checks": (0, 1),
        "guards": (0, 1),
    }
    assert {line.location for line in one.unbound()} == {
        f"sops/mini.sop.md:{n}" for n in (29, 32, 35, 38, 42)
    }
    assert {line.action.line for line in one.failures()} == {32, 35, 38, 42}
    assert [h.name.rsplit(".", 1)[1] for h in report.unused] == ["unused"]
    assert not report.ok
    text = report.to_text()
    assert "FAIL sops/mini.sop.md:42: MUST NOT log full card numbers" in text
    assert "skip sops/mini.sop.md:29: MAY send a postcard" in text
    assert "never matches anything here" in text


def test_strict_adds_should_lines(sop: Sop) -> None:
    reg = Registry()
    for pattern in (
        "verify customer exists",
        "capture the charge",
        "require confirmation for refunds > ${threshold:d}",
        "log full card numbers",
    ):
        reg.action(pattern)(lambda ctx, **kw: None)
    reg.check("amount is positive")(lambda ctx: True)
    assert coverage([sop], reg).ok
    strict = coverage([sop], reg, strict=True)
    assert not strict.ok
    assert [x.action.line for x in strict.sops[0].failures(True)] == [28]


def test_json_and_junit(sop: Sop) -> None:
    report = coverage([sop], _partial())
    data = report.to_dict()
    jsonschema.validate(data, load_schema("coverage.schema.json"))
    assert data["sops"][0]["counts"]["must"] == {"bound": 1, "total": 3}
    root = ET.fromstring(report.to_junit())
    cases = root.findall("./testsuite/testcase")
    assert len(cases) == 7
    failed = [c.get("line") for c in cases if c.find("failure") is not None]
    skipped = [c.get("line") for c in cases if c.find("skipped") is not None]
    assert sorted(failed) == ["32", "35", "38", "42"] and skipped == ["29"]


def test_ambiguous_line_is_reported_not_raised(sop: Sop) -> None:
    reg = Registry()
    reg.action("verify {a} exists")(lambda ctx, a: None)
    reg.action("verify {b} exists")(lambda ctx, b: None)
    line = next(x for x in coverage([sop], reg).sops[0].lines if x.action.line == 27)
    assert line.status == "ambiguous" and line.fails(False) and "ambiguous" in (line.error or "")


@pytest.mark.parametrize(
    ("text", "pattern", "params"),
    [
        (
            "set appropriate timeout (30 seconds)",
            "set appropriate timeout ({seconds:d} seconds)",
            (("seconds", "int"),),
        ),
        (
            "require confirmation for refunds > $100",
            "require confirmation for refunds > ${amount:d}",
            (("amount", "int"),),
        ),
        (
            "retry up to 3 times with 1.5 s delay",
            "retry up to {times:d} times with {s:f} s delay",
            (("times", "int"), ("s", "float")),
        ),
        ("write {output_dir}/index.md", "write {{output_dir}}/index.md", ()),
        ("use sha256 for v1.2", "use sha256 for v1.2", ()),
    ],
)
def test_pattern_for_lifts_numbers(text: str, pattern: str, params: tuple[Any, ...]) -> None:
    assert pattern_for(text) == (pattern, params)


def test_stub_round_trip_binds_every_line(sop: Sop, tmp_path: Path) -> None:
    reg = _partial()
    source = render(sop, reg)
    tree = ast.parse(source)  # valid Python
    names = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert "never_log_full_card_numbers" in names and "require_confirmation_for_refunds" in names
    assert "def require_confirmation_for_refunds(ctx: RunContext, amount: int) -> None:" in source
    # written against the public API only (engine's names, not its modules)
    assert "    from engine import RunContext\n" in source
    assert any(line.startswith("from engine import action") for line in source.splitlines())
    # import the saved module with this test's registry standing in for the default one
    path = tmp_path / "stubbed.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("stubbed_handlers", path)
    assert spec is not None and spec.loader is not None
    saved = registry_module.action, registry_module.check
    registry_module.action, registry_module.check = reg.action, reg.check
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    finally:
        registry_module.action, registry_module.check = saved
    reg.validate()
    report = coverage([sop], reg, strict=True)
    assert report.ok and not report.sops[0].unbound()
    assert render(sop, reg).count("def ") == 0  # nothing left to stub


_line_text = st.text(
    alphabet=st.sampled_from(list("abXY09 _*`.,:;!?-$>(){}[]/'\"")), min_size=1, max_size=40
)


@settings(max_examples=300, deadline=None)
@given(_line_text)
def test_every_line_is_bound_by_the_pattern_stub_writes_for_it(text: str) -> None:
    cleaned = clean(text)
    if not cleaned:
        return  # nothing left to bind (the parser never yields such a line)
    pattern, params = pattern_for(text)
    assert parse_pattern(pattern).match(cleaned) is not None
    assert len(params) == pattern.count(":d}") + pattern.count(":f}")
