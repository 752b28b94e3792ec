"""Tool definitions for agent frameworks: names, schemas, and the three target shapes.

The target shapes below are written from the frameworks' documentation:
- MCP ``Tool`` (spec 2025-11-25 / SEP-986): name ``^[A-Za-z0-9._-]{1,128}$``, ``inputSchema``
  an object schema (``type: "object"`` at the root), optional ``outputSchema`` (object root).
- OpenAI function tool: ``{"type": "function", "function": {"name", "description",
  "parameters", "strict"?}}``; name a-z, A-Z, 0-9, ``_`` and ``-``, at most 64; parameters a
  JSON Schema object.
- Anthropic Messages custom tool: ``{"name", "description"?, "input_schema"}``; name must match
  ``^[a-zA-Z0-9_-]{1,64}$``; input_schema a JSON Schema object with ``type: "object"``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from engine.agents import tools
from engine.language.params import schema_for
from engine.language.parser import parse
from engine.model import Sop
from tests.support.cli import sop_cli

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"

_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["type"],
    "properties": {
        "type": {"const": "object"},
        "properties": {"type": "object"},
        "required": {"type": "array", "items": {"type": "string"}},
    },
}
MCP_TOOL = {
    "type": "object",
    "required": ["name", "inputSchema"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9._-]{1,128}$"},
        "title": {"type": "string"},
        "description": {"type": "string"},
        "inputSchema": _OBJECT_SCHEMA,
        "outputSchema": {
            "type": "object",
            "required": ["type"],
            "properties": {"type": {"const": "object"}},
        },
        "annotations": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string"},
                "readOnlyHint": {"type": "boolean"},
                "destructiveHint": {"type": "boolean"},
                "idempotentHint": {"type": "boolean"},
                "openWorldHint": {"type": "boolean"},
            },
        },
    },
}
_FUNCTION_NAME = {"type": "string", "pattern": r"^[a-zA-Z0-9_-]{1,64}$"}
_NO_DOCUMENT_KEYS = {"not": {"anyOf": [{"required": ["$schema"]}, {"required": ["$id"]}]}}
OPENAI_TOOL = {
    "type": "object",
    "required": ["type", "function"],
    "additionalProperties": False,
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name", "description", "parameters"],
            "additionalProperties": False,
            "properties": {
                "name": _FUNCTION_NAME,
                "description": {"type": "string"},
                "parameters": {"allOf": [_OBJECT_SCHEMA, _NO_DOCUMENT_KEYS]},
                "strict": {"const": False},
            },
        },
    },
}
ANTHROPIC_TOOL = {
    "type": "object",
    "required": ["name", "description", "input_schema"],
    "additionalProperties": False,
    "properties": {
        "name": _FUNCTION_NAME,
        "description": {"type": "string"},
        "input_schema": {"allOf": [_OBJECT_SCHEMA, _NO_DOCUMENT_KEYS]},
        "cache_control": {"type": "object"},
    },
}
SHAPES = {"mcp": MCP_TOOL, "openai": OPENAI_TOOL, "anthropic": ANTHROPIC_TOOL}


def _seed() -> Sop:
    return parse(SEED.read_bytes(), path=str(SEED))


def _schemas_of(definition: dict[str, Any], fmt: str) -> list[dict[str, Any]]:
    if fmt == "mcp":
        return [
            definition["inputSchema"],
            *([definition["outputSchema"]] if "outputSchema" in definition else []),
        ]
    if fmt == "openai":
        return [definition["function"]["parameters"]]
    return [definition["input_schema"]]


def _names_of(definitions: list[dict[str, Any]], fmt: str) -> list[str]:
    return [d["function"]["name"] if fmt == "openai" else d["name"] for d in definitions]


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("sop_name", "expected"),
    [
        ("payment-processing", "payment_processing"),
        ("refund.handling v2", "refund_handling_v2"),
        ("--odd--", "odd"),
        ("___", "sop"),
        ("Résumé-Review", "R_sum_Review"),
    ],
)
def test_tool_name_is_safe_for_every_framework(sop_name: str, expected: str) -> None:
    assert tools.tool_name(sop_name) == expected


@given(st.text(max_size=300))
def test_any_sop_name_gives_a_valid_tool_name(sop_name: str) -> None:
    assert tools.TOOL_NAME_RE.fullmatch(tools.tool_name(sop_name))


def test_long_names_are_cut_to_64_and_stay_distinct() -> None:
    a, b = "x" * 80 + "-alpha", "x" * 80 + "-beta"
    assert len(tools.tool_name(a)) == 64 and len(tools.tool_name(b)) == 64
    assert tools.tool_name(a) != tools.tool_name(b)


def test_assign_names_avoids_fixed_tools_and_clashes_in_any_order() -> None:
    names, notes = tools.assign_names(["list-sops", "a_b", "a-b", "payment-processing"])
    again, _ = tools.assign_names(["payment-processing", "a-b", "list-sops", "a_b"])
    assert names == again
    assert names["payment-processing"] == "payment_processing"
    assert names["list-sops"] != "list_sops" and names["list-sops"].startswith("list_sops_")
    assert names["a-b"] == "a_b" and names["a_b"] != "a_b"  # sorted: "a-b" < "a_b"
    assert len(set(names.values())) == 4
    assert any("'list-sops'" in note and "fixed tool 'list_sops'" in note for note in notes)
    assert all(tools.TOOL_NAME_RE.fullmatch(n) for n in names.values())


# --------------------------------------------------------------------------- SOP tool


def test_seed_sop_tool_uses_overview_and_parameter_schema() -> None:
    sop = _seed()
    tool = tools.sop_tool(sop)
    assert tool.name == "payment_processing"
    assert tool.sop == "payment-processing"
    assert tool.description.startswith(
        "This SOP defines the standard procedure for processing payments"
    )
    assert "v1.0.0" in tool.description and "confirm" in tool.description
    assert len(tool.description) <= tools.MAX_DESCRIPTION
    assert tool.input_schema == schema_for(sop)
    assert tool.input_schema["required"] == ["operation", "customer_id"]


def test_description_is_capped_but_keeps_the_tool_tail() -> None:
    sop = Sop(
        name="long", title="Long", path=None, text="", content_hash="0", overview="word " * 1000
    )
    description = tools.sop_description(sop)
    assert len(description) <= tools.MAX_DESCRIPTION
    assert "..." in description and description.endswith("pauses the run until it is confirmed.")


def test_non_object_input_schema_is_refused() -> None:
    with pytest.raises(ValueError, match="object schema"):
        tools.object_schema({"type": "array"})
    assert tools.object_schema({"properties": {}})["type"] == "object"


def test_function_schema_strips_document_and_extension_keys_but_not_parameters() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "urn:x",
        "type": "object",
        "x-sop-version": "1",
        "properties": {
            "x-trace": {"type": "string", "x-generated": "uuid"},
            "n": {"type": "integer"},
        },
        "allOf": [
            {
                "if": {"properties": {"n": {"const": 1}}},
                "then": {"required": ["x-trace"], "x-note": 1},
            }
        ],
    }
    cleaned = tools.function_schema(schema)
    assert "$schema" not in cleaned and "$id" not in cleaned and "x-sop-version" not in cleaned
    assert cleaned["properties"]["x-trace"] == {"type": "string"}  # the parameter stays
    assert cleaned["allOf"][0]["then"] == {"required": ["x-trace"]}
    assert schema["properties"]["x-trace"]["x-generated"] == "uuid"  # input untouched
    Draft202012Validator.check_schema(cleaned)


# --------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("fmt", tools.FORMATS)
def test_every_definition_matches_its_target_shape(fmt: str) -> None:
    sop_tool = tools.sop_tool(_seed(), output_schema={"type": "object", "properties": {}})
    definitions = tools.export([*tools.fixed_tools(), sop_tool], fmt)
    assert len(definitions) == len(tools.FIXED_NAMES) + 1
    shape = Draft202012Validator(SHAPES[fmt])
    for definition in definitions:
        problems = [e.message for e in shape.iter_errors(definition)]
        assert problems == [], (definition, problems)
        for schema in _schemas_of(definition, fmt):
            Draft202012Validator.check_schema(schema)
    assert _names_of(definitions, fmt) == [*tools.FIXED_NAMES, "payment_processing"]


def test_shapes_reject_what_the_targets_reject() -> None:
    """The shape schemas can fail: a bad name, a non-object schema, document keys."""
    bad_name = {
        "type": "function",
        "function": {"name": "has space", "description": "", "parameters": {"type": "object"}},
    }
    assert not Draft202012Validator(OPENAI_TOOL).is_valid(bad_name)
    with_id = {"name": "ok", "description": "", "input_schema": {"type": "object", "$id": "urn:x"}}
    assert not Draft202012Validator(ANTHROPIC_TOOL).is_valid(with_id)
    array_root = {"name": "ok", "inputSchema": {"type": "array"}}
    assert not Draft202012Validator(MCP_TOOL).is_valid(array_root)


def test_mcp_shape_is_accepted_by_the_sdk_tool_model() -> None:
    from mcp import types

    for definition in tools.export([*tools.fixed_tools(), tools.sop_tool(_seed())], "mcp"):
        tool = types.Tool.model_validate(definition)
        assert tool.name == definition["name"]
        assert tool.input_schema == definition["inputSchema"]


def test_openai_export_never_sets_strict_and_keeps_conditionals() -> None:
    (definition,) = tools.export([tools.sop_tool(_seed())], "openai")
    assert "strict" not in definition["function"]
    assert definition["function"]["parameters"][
        "allOf"
    ]  # charge needs amount, refund payment_intent


def test_unknown_format_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown tool format 'yaml'"):
        tools.export([], "yaml")


# --------------------------------------------------------------------------- CLI


def _sop_tools(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    inherited = [k for k in os.environ if k.startswith("SOP_")]
    return sop_cli("tools", *args, cwd=cwd, env={"SOP_PATH": ""}, drop=inherited, timeout=60)


DEMO = """# Demo Greeting SOP

**Version**: 0.1.0
**Status**: Active

## Overview

Greets a person by name.

## Parameters

- **who** (string): Who to greet

## Steps

### 1. Greet

**Actions**:
- MUST say hello to the person
"""


@pytest.mark.parametrize("fmt", tools.FORMATS)
def test_sop_tools_prints_valid_definitions(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "demo-greeting.sop.md").write_text(DEMO, encoding="utf-8")
    proc = _sop_tools(tmp_path, "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    definitions = json.loads(proc.stdout)
    shape = Draft202012Validator(SHAPES[fmt])
    for definition in definitions:
        assert shape.is_valid(definition), definition
        for schema in _schemas_of(definition, fmt):
            Draft202012Validator.check_schema(schema)
    names = _names_of(definitions, fmt)
    assert names[: len(tools.FIXED_NAMES)] == list(tools.FIXED_NAMES)
    assert "demo_greeting" in names and "payment_processing" in names  # project + built-in


def test_sop_tools_skips_a_broken_sop_and_says_why(tmp_path: Path) -> None:
    (tmp_path / "sops").mkdir()
    broken = tmp_path / "sops" / "broken.sop.md"
    # no Overview (SOP101) and a step numbered 2 first (SOP103): lint errors
    broken.write_text(
        "# Broken\n\n## Steps\n\n### 2. X\n\n**Actions**:\n- MUST do x\n", encoding="utf-8"
    )
    proc = _sop_tools(tmp_path, "--format", "anthropic")
    assert proc.returncode == 0, proc.stderr
    names = [d["name"] for d in json.loads(proc.stdout)]
    assert "broken" not in names and "payment_processing" in names
    assert "broken.sop.md" in proc.stderr and "not served" in proc.stderr and "SOP10" in proc.stderr


def test_sop_tools_bad_format_is_a_usage_error(tmp_path: Path) -> None:
    proc = _sop_tools(tmp_path, "--format", "yaml")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "invalid choice" in proc.stderr
