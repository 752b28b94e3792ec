"""Tool definitions for agents: one tool per SOP plus the fixed SOP tools.

The same definitions are served by ``sop mcp`` and printed by ``sop tools`` in the
MCP, OpenAI and Anthropic shapes, so every framework sees the same names, words and
schemas. Pure functions over :class:`~engine.model.Sop` values: nothing here imports
``mcp`` or runs anything.

Names follow the strictest target: OpenAI and Anthropic accept
``^[a-zA-Z0-9_-]{1,64}$``, MCP (SEP-986) ``^[A-Za-z0-9._-]{1,128}$``. A SOP named
``payment-processing`` becomes the tool ``payment_processing`` (underscores read as
one identifier in every framework, and the SOP's own name stays its prompt name).
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from engine.model import Sop

#: What OpenAI and Anthropic accept; a subset of what MCP accepts.
TOOL_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_NAME = 64
#: Descriptions are hints for a model: the Overview's first paragraph, capped.
MAX_DESCRIPTION = 1024
FORMATS = ("mcp", "openai", "anthropic")

LIST_SOPS = "list_sops"
DESCRIBE_SOP = "describe_sop"
PLAN_SOP = "plan_sop"
CONFIRM_RUN = "confirm_run"
INSPECT_RUN = "inspect_run"
REPORT_TASKS = "report_tasks"
FIXED_NAMES = (LIST_SOPS, DESCRIBE_SOP, PLAN_SOP, CONFIRM_RUN, INSPECT_RUN, REPORT_TASKS)
RUN_RESULT_SCHEMA = "run-result.schema.json"


@dataclass(frozen=True)
class ToolDef:
    """One tool, independent of the framework that will call it."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None = None
    title: str | None = None
    sop: str | None = None  # the SOP this tool runs; None for the fixed tools
    read_only: bool = False
    destructive: bool = False


# --------------------------------------------------------------------------- names


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def tool_name(sop_name: str) -> str:
    """``payment-processing`` -> ``payment_processing``; always matches :data:`TOOL_NAME_RE`.

    Runs of other characters become one ``_``; a name longer than 64 characters keeps
    its first 55 and gains a digest of the full name, so two long names stay distinct.
    """
    name = re.sub(r"[^A-Za-z0-9_]+", "_", sop_name).strip("_") or "sop"
    if len(name) > MAX_NAME:
        name = f"{name[: MAX_NAME - 9]}_{_digest(sop_name)}"
    return name


def assign_names(sop_names: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Tool name for each SOP, unique and never a fixed tool's name.

    Returns ``(sop name -> tool name, notes)``. SOPs are taken in sorted order so the
    outcome does not depend on discovery order; a clash keeps the first SOP's name and
    gives the next one a digest suffix, with a note naming both.
    """
    taken: dict[str, str] = {name: f"the fixed tool {name!r}" for name in FIXED_NAMES}
    names: dict[str, str] = {}
    notes: list[str] = []
    for sop_name in sorted(set(sop_names)):
        name = tool_name(sop_name)
        if name in taken:
            wanted = name
            name = f"{name[: MAX_NAME - 9]}_{_digest(sop_name)}"
            notes.append(
                f"SOP {sop_name!r}: tool name {wanted!r} is taken by {taken[wanted]}; "
                f"serving it as {name!r}"
            )
        taken[name] = f"SOP {sop_name!r}"
        names[sop_name] = name
    return names, notes


# --------------------------------------------------------------------------- SOP tools


def _first_paragraph(text: str) -> str:
    for block in re.split(r"\n\s*\n", text.strip()):
        words = " ".join(block.split())
        if words:
            return words
    return ""


def _cap(text: str, limit: int = MAX_DESCRIPTION) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def sop_description(sop: Sop) -> str:
    """What the tool does in the SOP's own words, then how it behaves as a tool."""
    overview = _first_paragraph(sop.overview) or sop.title or sop.name
    version = f" v{sop.version}" if sop.version else ""
    tail = (
        f" Runs the SOP '{sop.name}'{version} and returns the run result (status, output, "
        "every action and why any was skipped). A step that needs confirmation pauses the "
        "run until it is confirmed."
    )
    return _cap(overview.rstrip(), MAX_DESCRIPTION - len(tail)) + tail


def sop_tool(
    sop: Sop,
    input_schema: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    output_schema: Mapping[str, Any] | None = None,
) -> ToolDef:
    """The tool that runs ``sop``; its input schema is the SOP's parameter schema."""
    if input_schema is None:
        from engine.language.params import schema_for

        input_schema = schema_for(sop)
    return ToolDef(
        name=name or tool_name(sop.name),
        description=sop_description(sop),
        input_schema=object_schema(input_schema),
        output_schema=dict(output_schema) if output_schema is not None else None,
        title=sop.title or sop.name,
        sop=sop.name,
    )


def object_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy whose root is ``type: object`` (every target requires an object root)."""
    result = copy.deepcopy(dict(schema))
    root_type = result.get("type")
    if root_type is None:
        result["type"] = "object"
    elif root_type != "object":
        raise ValueError(f"tool input schema must be an object schema (got type {root_type!r})")
    return result


def run_result_schema() -> dict[str, Any] | None:
    """The published run-result schema as an MCP ``outputSchema`` (None if not shipped)."""
    from engine.language.resources import load_schema

    try:
        schema = load_schema(RUN_RESULT_SCHEMA)
    except (OSError, ValueError):
        return None
    if schema.get("type") != "object":
        return None
    return copy.deepcopy(schema)


# --------------------------------------------------------------------------- fixed tools


def _name_param(what: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": 200,
        "description": f"{what}: the SOP name (e.g. payment-processing) or its tool name",
    }


_RUN_ID = {"type": "string", "minLength": 1, "maxLength": 200, "description": "the run id"}


def fixed_tools(run_output_schema: Mapping[str, Any] | None = None) -> tuple[ToolDef, ...]:
    """The tools every server offers besides one per SOP."""
    out = dict(run_output_schema) if run_output_schema is not None else None
    return (
        ToolDef(
            name=LIST_SOPS,
            title="List SOPs",
            description=(
                "List the Standard Operating Procedures this server offers: name, tool name, "
                "title, version, status, and any lint errors in the file on disk."
            ),
            input_schema={"type": "object", "properties": {}, "additionalProperties": False},
            read_only=True,
        ),
        ToolDef(
            name=DESCRIBE_SOP,
            title="Describe an SOP",
            description=(
                "Describe one SOP: its parameters (JSON Schema), steps, every action and check "
                "with its level (MUST/SHOULD/MAY) and which handler binds it, or that none does."
            ),
            input_schema={
                "type": "object",
                "properties": {"name": _name_param("which SOP")},
                "required": ["name"],
                "additionalProperties": False,
            },
            read_only=True,
        ),
        ToolDef(
            name=PLAN_SOP,
            title="Plan an SOP run (dry run)",
            description=(
                "Dry run: validate parameters and bind every action of an SOP to its handler "
                "without running anything. Shows what would run, what would be skipped and why, "
                "and any required line no handler backs."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "name": _name_param("which SOP"),
                    "params": {
                        "type": "object",
                        "description": "the SOP's parameters, as its own tool takes them",
                    },
                },
                "required": ["name"],
                "additionalProperties": False,
            },
            read_only=True,
        ),
        ToolDef(
            name=CONFIRM_RUN,
            title="Confirm a paused run",
            description=(
                "Confirm a run paused for confirmation and let it finish. Only allowed when "
                "the server was started with an agent confirmation policy; by default a person "
                "confirms with `sop resume RUN_ID --confirm TOKEN`."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "run_id": _RUN_ID,
                    "token": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 500,
                        "description": "the confirmation token of the pending operation",
                    },
                },
                "required": ["run_id", "token"],
                "additionalProperties": False,
            },
            output_schema=out,
            destructive=True,
        ),
        ToolDef(
            name=INSPECT_RUN,
            title="Inspect a run",
            description=(
                "Read a recorded run from the journal: its status, and its last result (output, "
                "every action with its status and reason, errors, what it waits for if paused)."
            ),
            input_schema={
                "type": "object",
                "properties": {"run_id": _RUN_ID},
                "required": ["run_id"],
                "additionalProperties": False,
            },
            read_only=True,
        ),
        ToolDef(
            name=REPORT_TASKS,
            title="Report a run's tasks",
            description=(
                "Report what you did on the tasks a waiting run lists (its `tasks`): done with "
                "a note (evidence: what was done, links, paths), skipped with a reason (SHOULD / "
                "MAY only), or failed. Returns the next tasks, what is still open, or the final "
                "result."
            ),
            input_schema={
                "type": "object",
                "properties": {
                    "run_id": _RUN_ID,
                    "reports": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 200,
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "minLength": 1, "maxLength": 200},
                                "outcome": {"enum": ["done", "skipped", "failed"]},
                                "note": {"type": "string", "maxLength": 10000},
                            },
                            "required": ["id", "outcome"],
                            "additionalProperties": False,
                        },
                    },
                },
                "required": ["run_id", "reports"],
                "additionalProperties": False,
            },
            output_schema=out,
            destructive=True,
        ),
    )


# --------------------------------------------------------------------------- shapes


def function_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An input schema for OpenAI / Anthropic function tools.

    Both take "a JSON Schema object"; the document keywords ``$schema`` and ``$id``
    identify a schema file, not a parameter list, so they are dropped at the root, and so
    are the engine's ``x-*`` extension keywords (meaningless to a model).
    Conditional keywords (``allOf``/``if``/``then``) stay: they are valid JSON Schema and
    accepted in non-strict mode; we never emit OpenAI ``strict: true`` (its subset forbids them).
    """
    result: dict[str, Any] = _without_extensions(object_schema(schema))
    result.pop("$schema", None)
    result.pop("$id", None)
    return result


#: Keywords whose value is one subschema / a list of them / a name -> subschema map.
_ONE = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
)
_MANY = ("allOf", "anyOf", "oneOf", "prefixItems")
_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def _without_extensions(schema: Any) -> Any:
    """Drop ``x-*`` extension keywords (engine hints such as ``x-generated``) everywhere.

    Walks the schema structurally, so a *parameter* whose name starts with ``x-`` stays.
    """
    if not isinstance(schema, dict):
        return schema
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key.startswith("x-"):
            continue
        if key in _ONE:
            result[key] = _without_extensions(value)
        elif key in _MANY and isinstance(value, list):
            result[key] = [_without_extensions(v) for v in value]
        elif key in _MAP and isinstance(value, dict):
            result[key] = {k: _without_extensions(v) for k, v in value.items()}
        else:
            result[key] = value
    return result


def to_mcp(tool: ToolDef) -> dict[str, Any]:
    """MCP ``Tool`` (camelCase wire names)."""
    shape: dict[str, Any] = {"name": tool.name}
    if tool.title:
        shape["title"] = tool.title
    shape["description"] = tool.description
    shape["inputSchema"] = copy.deepcopy(tool.input_schema)
    if tool.output_schema is not None:
        shape["outputSchema"] = copy.deepcopy(tool.output_schema)
    shape["annotations"] = tool_annotations(tool)
    return shape


def tool_annotations(tool: ToolDef) -> dict[str, Any]:
    """MCP tool annotations (hints only): read-only tools, and which ones act on the world."""
    hints: dict[str, Any] = {"readOnlyHint": tool.read_only}
    if not tool.read_only:
        hints["destructiveHint"] = tool.destructive or tool.sop is not None
        hints["openWorldHint"] = True
    return hints


def to_openai(tool: ToolDef) -> dict[str, Any]:
    """OpenAI function tool (Chat Completions shape), never ``strict``."""
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": function_schema(tool.input_schema),
        },
    }


def to_anthropic(tool: ToolDef) -> dict[str, Any]:
    """Anthropic Messages API custom tool."""
    return {
        "name": tool.name,
        "description": tool.description,
        "input_schema": function_schema(tool.input_schema),
    }


_EXPORTERS = {"mcp": to_mcp, "openai": to_openai, "anthropic": to_anthropic}


def export(tools: Iterable[ToolDef], fmt: str) -> list[dict[str, Any]]:
    """Every tool in the shape ``fmt`` (one of :data:`FORMATS`)."""
    try:
        exporter = _EXPORTERS[fmt]
    except KeyError:
        expected = ", ".join(FORMATS)
        raise ValueError(f"unknown tool format {fmt!r} (expected one of {expected})") from None
    return [exporter(tool) for tool in tools]
