"""The state of reading one SOP file: what each section reader adds to, and its diagnostics.

Section readers (engine.language.sections, .steps, .parameters_section, .examples_section)
are plain functions of a :class:`Reading` and the section's tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.language import markdown
from engine.language.markdown import Env, Token
from engine.model import (
    Action,
    Diagnostic,
    ErrorRule,
    Example,
    Link,
    Parameter,
    RecoveryRule,
    Severity,
    SubStep,
)

__all__ = ["ERROR", "INFO", "WARNING", "Reading", "StepDraft", "child_texts", "first_text"]

ERROR, WARNING, INFO = Severity.ERROR, Severity.WARNING, Severity.INFO


@dataclass(eq=False)  # a draft is one object being filled: identity is its equality
class StepDraft:
    """A step while its section is read (frozen into :class:`engine.model.Step` at the end)."""

    number: int
    title: str
    line: int
    purpose: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    checks: list[Action] = field(default_factory=list)
    rules: list[ErrorRule] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    performer: str | None = None
    substeps: list[SubStep] = field(default_factory=list)


@dataclass(eq=False)  # a draft is one object being filled: identity is its equality
class Reading:
    """One file being read: its diagnostics and what the sections contribute to the model."""

    path: str | None
    n_lines: int = 1
    env: Env = field(default_factory=lambda: {"ref_links": {}})
    diags: list[Diagnostic] = field(default_factory=list)
    params: list[Parameter] = field(default_factory=list)
    steps: list[StepDraft] = field(default_factory=list)
    guards: list[Action] = field(default_factory=list)
    sop_wide: list[Action] = field(default_factory=list)
    recovery: list[RecoveryRule] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    related: list[Link] = field(default_factory=list)
    overview: list[str] = field(default_factory=list)
    prerequisites: list[str] = field(default_factory=list)
    criteria: list[str] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    steps_line: int = 0  # the first "## Steps" heading (0: none)

    def diag(self, code: str, severity: Severity, line: int, message: str) -> None:
        line = min(max(1, line), self.n_lines)
        self.diags.append(Diagnostic(code, severity, message, line, 1, self.path))

    def plain(self, raw: str) -> str:
        """Inline markdown -> plain text (code spans keep their content)."""
        return markdown.plain(raw, self.env)

    def links(self, raw: str) -> list[tuple[str, str]]:
        return markdown.links(raw, self.env)

    def item_texts(self, toks: list[Token]) -> list[str]:
        """The plain first text of every item of the lists in ``toks``."""
        return [
            self.plain(first_text(item))
            for tok in toks
            if tok["type"] == "list"
            for item in tok["children"]
        ]


def first_text(item: Token) -> str:
    """The raw text of a list item's first paragraph."""
    children = item.get("children") or ()
    if children and children[0].get("type") in ("block_text", "paragraph"):
        return str(children[0].get("text", ""))
    return ""


def child_texts(tokens: Any, out: list[str], plain: Callable[[str], str]) -> None:
    """Nested items (and later paragraphs) of a list item, depth first, as plain text."""
    for tok in tokens:
        kind = tok.get("type")
        if kind in ("block_text", "paragraph"):
            text = plain(tok.get("text", ""))
            if text:
                out.append(text)
        elif kind in ("list", "list_item", "block_quote"):
            child_texts(tok.get("children", ()), out, plain)
