"""The step graph of the seed and of an SOP with awkward characters; JSON against its schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine.language.graph import to_dot, to_json, to_mermaid
from engine.language.parser import parse
from tests.support.sops import AWKWARD, FRAGMENTS

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"
SCHEMA = json.loads((ROOT / "schemas" / "graph.schema.json").read_text(encoding="utf-8"))


def _seed() -> dict[str, object]:
    return to_json(parse(SEED.read_text(encoding="utf-8"), path=str(SEED)))


def test_seed_graph_validates_and_fans_out_at_step_3() -> None:
    graph = _seed()
    Draft202012Validator(SCHEMA).validate(graph)
    spine = ("start", "guards", "step", "branch", "end")
    ids = [n["id"] for n in graph["nodes"] if n["kind"] in spine]  # type: ignore[index]
    assert ids == ["start", "guards", "s1", "s2", "s3", "s3b1", "s3b2", "s4", "s5", "done"]
    edges = {
        (e["source"], e["target"], e["condition"])
        for e in graph["edges"]  # type: ignore[attr-defined]
        if e["kind"] in ("next", "child")
    }
    assert edges == {
        ("start", "guards", None),
        ("guards", "s1", None),
        ("s1", "s2", None),
        ("s2", "s3", None),
        ("s3", "s3b1", "operation = charge"),
        ("s3", "s3b2", "operation = refund"),
        ("s3b1", "s4", None),
        ("s3b2", "s4", None),
        ("s3", "c1", "operation = subscription"),  # runs subscription-management
        ("c1", "s4", None),
        ("s4", "s5", None),
        ("s5", "done", None),
    }


def test_seed_nodes_carry_levels_checks_and_guards() -> None:
    nodes = {n["id"]: n for n in _seed()["nodes"]}  # type: ignore[attr-defined]
    guards = nodes["guards"]["lines"]
    assert guards[0] == {
        "id": "sop:guard:L161",
        "kind": "guard",
        "level": "MUST NOT",
        "text": "log full card numbers or CVV",
        "line": 161,
    }
    assert len(guards) == 5
    s1 = nodes["s1"]["lines"]
    assert [i["level"] for i in s1[:5]] == ["MUST", "MUST", "MUST", "SHOULD", "MAY"]
    assert [i["kind"] for i in s1[5:]] == ["check", "check"]
    assert nodes["s3b1"]["param"] == "operation" and nodes["s3b1"]["value"] == "charge"
    assert "MUST NOT" in [i["level"] for i in nodes["s4"]["lines"]]
    assert [(e["condition"], e["line"]) for e in nodes["s1"]["errors"]] == [
        ("customer not found", 64),
        ("no payment method", 65),
    ]


def test_mermaid_seed() -> None:
    text = to_mermaid(parse(SEED.read_text(encoding="utf-8"), path=str(SEED)))
    assert text.startswith("flowchart TD\n")
    assert '    s3 -->|"operation = charge"| s3b1' in text
    assert "refunds #gt; $100" in text
    assert re.search(r"^\s+end\b", text, re.MULTILINE) is None  # "end" is a Mermaid keyword


def test_mermaid_escapes_every_label() -> None:
    sop = parse(AWKWARD, path="awkward.sop.md")
    text = to_mermaid(sop)
    for line in text.splitlines()[1:]:
        node = re.fullmatch(
            r'    (\w+)(\(\["|\[\["|\["|\[/"|\{\{")(.*)("\]\)|"\]\]|"\]|"/\]|"\}\})', line
        )
        arrow = r"(-->|-\.->|==>)"
        edge = re.fullmatch(rf'    (\w+) {arrow} (\w+)|    (\w+) {arrow}\|"([^"]*)"\| (\w+)', line)
        style = re.fullmatch(r"    classDef \w+ [-\w:#,. ]+|    class \w+ \w+", line)
        assert node or edge or style, line
        if node:
            label = node.group(3)
            assert not set(label) & set('"[]{}<>|`()'.replace("<", "").replace(">", "")), label
            assert "<" not in label.replace("<br/>", "")
    assert "#quot;hi#quot; #91;now#93;" in text
    assert "#lt;b#gt;bold" in text
    graph = to_json(sop)
    Draft202012Validator(SCHEMA).validate(graph)
    conditions = {e["condition"] for e in graph["edges"]}
    assert {"mode = fast", "mode = slow"} <= conditions
    assert not any(c and c.startswith("otherwise") for c in conditions)  # both values handled
    branch_lines = {n["id"]: n["lines"] for n in graph["nodes"] if n["kind"] == "branch"}
    assert branch_lines["s2b1"][0]["text"] == "go fast"
    assert branch_lines["s2b2"][0]["level"] == "MAY"


def test_dot_is_balanced_and_escaped() -> None:
    sop = parse(AWKWARD, path="awkward.sop.md")
    text = to_dot(sop)
    assert text.startswith('digraph "awkward" {') and text.rstrip().endswith("}")
    for line in text.splitlines()[3:-1]:
        # every quote inside a label is escaped: unescaped quotes come in pairs
        unescaped = re.sub(r"\\.", "", line)
        assert unescaped.count('"') % 2 == 0, line
    assert '\\"hi\\"' in text
    assert 's2 -> s2b1 [label="mode = fast"];' in text


def test_empty_sop_still_draws() -> None:
    sop = parse("# Nothing\n", path="nothing.sop.md")
    graph = to_json(sop)
    Draft202012Validator(SCHEMA).validate(graph)
    assert [n["id"] for n in graph["nodes"]] == ["start", "done"]
    assert to_mermaid(sop).count("-->") == 1


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS) | st.text(max_size=40), max_size=12))
def test_any_document_draws(parts: list[str]) -> None:
    sop = parse("".join(parts), path="fuzz.sop.md")
    graph = to_json(sop)
    Draft202012Validator(SCHEMA).validate(graph)
    ids = {n["id"] for n in graph["nodes"]}
    assert len(ids) == len(graph["nodes"])
    assert all(e["source"] in ids and e["target"] in ids for e in graph["edges"])
    assert to_mermaid(sop).startswith("flowchart TD\n")
    assert to_dot(sop).rstrip().endswith("}")
