"""The Examples section: ``### Example N: Title`` with a YAML block of ``Input:`` and
``Expected Output:`` mappings (engine.testing.examples runs them)."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from engine.language.markdown import Token
from engine.language.reading import ERROR, Reading
from engine.language.yaml_text import ALIAS_MESSAGE, load_yaml, yaml_alias_line
from engine.model import Example

__all__ = ["read_examples"]


@dataclass(eq=False)  # a draft is one object being filled: identity is its equality
class _Draft:
    """An example while its section is read (an :class:`engine.model.Example` at the end)."""

    title: str
    line: int
    number: int | None
    raw: str = ""
    code_line: int = 0


def read_examples(r: Reading, toks: list[Token]) -> None:
    pending: list[_Draft] = []
    current: _Draft | None = None
    for tok in toks:
        if tok["type"] == "heading" and tok["attrs"]["level"] == 3:
            title, number = _example_title(r.plain(tok.get("text", "")))
            current = _Draft(title, tok["_line"], number)
            pending.append(current)
        elif tok["type"] == "block_code" and current is not None and not current.code_line:
            current.raw = tok.get("raw", "")
            current.code_line = tok["_line"] + (1 if tok.get("style") == "fenced" else 0)
    for ex in pending:
        r.examples.append(_example(r, ex))


def _example(r: Reading, ex: _Draft) -> Example:
    code_lines = ex.raw.split("\n")
    heads = {ln.rstrip(): k for k, ln in enumerate(code_lines) if ln[:1] not in (" ", "\t", "#")}
    if "Input:" not in heads and "Expected Output:" not in heads:
        # Agent SOPs show an "Example Input" / "Example Output" as prose: documentation
        return Example(ex.title, ex.line, raw=ex.raw, number=ex.number, documentation=True)
    try:
        alias = yaml_alias_line(ex.raw)
        if alias is not None:
            where = f"example '{ex.title}'"
            r.diag("SOP052", ERROR, ex.code_line + alias, ALIAS_MESSAGE.format(where=where))
            return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
        data = load_yaml(ex.raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = ex.code_line + (mark.line if mark is not None else 0)
        problem = getattr(exc, "problem", None) or "invalid YAML"
        r.diag(
            "SOP050",
            ERROR,
            line,
            f"example '{ex.title}' is not valid YAML ({problem}): "
            "indent each key under 'Input:' / 'Expected Output:' by two spaces",
        )
        return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
    except Exception as exc:  # hostile YAML (e.g. huge anchors) must not escape
        r.diag(
            "SOP050",
            ERROR,
            ex.code_line,
            f"example '{ex.title}' could not be read ({type(exc).__name__})",
        )
        return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
    inputs = data.get("Input") if isinstance(data, dict) else None
    expected = data.get("Expected Output") if isinstance(data, dict) else None
    if not isinstance(inputs, dict | None) or not isinstance(expected, dict | None):
        r.diag(
            "SOP051",
            ERROR,
            ex.code_line,
            f"example '{ex.title}': 'Input:' and "
            "'Expected Output:' must each hold indented 'key: value' lines",
        )
        return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
    input_line = 0
    key_lines: dict[str, int] = {}
    if "Input:" in heads:
        k0 = heads["Input:"]
        input_line = ex.code_line + k0
        indent = -1
        for k in range(k0 + 1, len(code_lines)):
            ln = code_lines[k]
            stripped = ln.lstrip(" ")
            if not stripped or stripped.startswith("#"):
                continue
            width = len(ln) - len(stripped)
            if width == 0:
                break
            if indent < 0:
                indent = width
            if width == indent:
                key = stripped.split(":", 1)[0].strip().strip("\"'")
                key_lines.setdefault(key, ex.code_line + k)
    return Example(
        ex.title,
        ex.line,
        dict(inputs or {}),
        dict(expected or {}),
        input_line,
        key_lines,
        ex.raw,
        ex.number,
    )


def _example_title(heading: str) -> tuple[str, int | None]:
    """``Example 2: Refund`` -> ("Refund", 2); other headings stay as written."""
    if heading.lower().startswith("example "):
        rest = heading[8:].lstrip()
        i = 0
        while i < len(rest) and i < 6 and rest[i].isdigit():
            i += 1
        if i:
            title = rest[i:].lstrip(".:)-\u2013\u2014 ").strip()
            return title or heading, int(rest[:i])
    return heading, None
