"""The graph shows every way out of the happy path, and a run's statuses on every line;
SVG and PNG come from Graphviz's real ``dot``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from engine.errors import UsageError
from engine.language.graph import STATUSES, render, to_dot, to_json, to_mermaid
from engine.language.parser import parse
from engine.model import Sop

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"
SCHEMA = json.loads((ROOT / "schemas" / "graph.schema.json").read_text(encoding="utf-8"))


def _seed() -> Sop:
    return parse(SEED.read_text(encoding="utf-8"), path=str(SEED))


def _every_status(sop: Sop) -> dict[str, str]:
    """Each status on at least one line; the subscription path's child run passed."""
    statuses = {a.id: STATUSES[i % len(STATUSES)] for i, a in enumerate(sop.all_actions())}
    statuses["child:subscription-management"] = "passed"
    return statuses


def test_error_handling_rules_exit_to_failure_ends_with_the_sops_message() -> None:
    graph = to_json(_seed())
    nodes = {n["id"]: n for n in graph["nodes"]}
    errors = {
        (e["source"], e["target"], e["condition"]) for e in graph["edges"] if e["kind"] == "error"
    }
    assert errors == {
        ("s1", "s1x1", "customer not found"),
        ("s1", "s1x2", "no payment method"),
        ("s4", "s4x1", "payment fails"),
    }
    assert nodes["s1x1"]["kind"] == "failure"
    assert nodes["s1x1"]["label"] == "Customer not found"  # the message the SOP quotes
    assert nodes["s1x2"]["label"] == "No payment method available"


def test_retries_loop_and_the_recovery_table_states_each_policy() -> None:
    graph = to_json(_seed())
    retries = [e for e in graph["edges"] if e["kind"] == "retry"]
    assert retries == [
        {
            "source": "s4",
            "target": "s4",
            "condition": "network error: retry up to 3 times, backoff",
            "kind": "retry",
        }
    ]
    recovery = next(n for n in graph["nodes"] if n["id"] == "recovery")
    policies = {r["error_type"]: r["policy"] for r in recovery["rules"]}
    assert policies["Network timeout"] == "retry up to 3 times, backoff"
    assert policies["Insufficient funds"] == "do not retry, notify user"
    assert policies["Fraud detected"] == "block transaction, escalate to supervisor"
    assert "retry up to 3 times, backoff" in to_mermaid(_seed())


def test_subscription_path_runs_its_child_sop_and_gates_are_marked() -> None:
    sop = _seed()
    graph = to_json(sop)
    child = next(n for n in graph["nodes"] if n["kind"] == "child")
    assert child["sop"] == "subscription-management"
    assert {
        "source": "s3",
        "target": child["id"],
        "condition": "operation = subscription",
        "kind": "child",
    } in graph["edges"]
    gates = [i["text"] for n in graph["nodes"] for i in n.get("lines", []) if i.get("gate")]
    assert gates == ["require confirmation for refunds > $100"]
    assert 'click c1 href "subscription-management.sop.md"' in to_mermaid(sop)
    assert 'URL="subscription-management.sop.md"' in to_dot(sop)


def test_a_run_colours_every_line_by_its_status_in_mermaid() -> None:
    sop = _seed()
    statuses = _every_status(sop)
    graph = to_json(sop, statuses)
    Draft202012Validator(SCHEMA).validate(graph)
    text = to_mermaid(sop, statuses)
    for status in STATUSES:
        assert re.search(rf"^    classDef {status.replace(' ', '_')} fill:#", text, re.M), status
    # each line is its own node in its step's subgraph, with the class of its status
    lines = [a for a in sop.all_actions()]
    classed = dict(re.findall(r"^    class (s\d+(?:b\d+)?_\d+|guards_\d+) (\w+)$", text, re.M))
    assert len(classed) == len(lines)
    assert sorted(set(classed.values())) == sorted(s.replace(" ", "_") for s in STATUSES)
    assert "    subgraph s1[" in text
    assert re.search(r"^    class c1 passed$", text, re.M)  # the child run's own status


def test_lines_a_run_never_mentions_are_not_reached() -> None:
    sop = _seed()
    graph = to_json(sop, {})
    assert {i["status"] for n in graph["nodes"] for i in n.get("lines", [])} == {"not reached"}


def test_dot_rows_carry_status_colour_and_word() -> None:
    sop = _seed()
    first = sop.all_actions()[0]
    text = to_dot(sop, {first.id: "failed"})
    assert '<td bgcolor="#fbd5d5"><i>failed</i></td>' in text
    assert "legend [shape=plain" in text


def test_svg_and_png_are_drawn_by_graphviz() -> None:
    if shutil.which("dot") is None:
        pytest.fail("Graphviz's dot is missing: `make test` installs it (apt-get install graphviz)")
    sop = _seed()
    svg = render(sop, "svg", _every_status(sop))
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "not reached" in svg and "Customer not found" in svg
    png = render(sop, "png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


def test_without_dot_svg_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no dot on PATH
    with pytest.raises(UsageError) as caught:
        render(_seed(), "svg")
    message = str(caught.value)
    assert "\n" not in message and "graphviz" in message and "--format svg" in message


def test_unknown_format_is_refused() -> None:
    with pytest.raises(UsageError, match="unknown graph format 'gif'"):
        render(_seed(), "gif")
