"""The document's sections: H1/H2 split, the metadata lines under the title, and one
reader per known ``## Section``, registered by name in :data:`READERS`.

A reader takes the :class:`Reading` and the section's tokens and returns the keyword
lines the section holds (``Section.actions``); what else it finds it adds to the Reading.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.language.actions import keyword_item
from engine.language.examples_section import read_examples
from engine.language.markdown import Token
from engine.language.parameters_section import read_parameters
from engine.language.reading import WARNING, Reading, first_text
from engine.language.recovery import interpret
from engine.language.steps import read_steps
from engine.language.tasks import loose_actions
from engine.language.words import bold_label
from engine.model import Action, ActionKind, Link, RecoveryRule

__all__ = [
    "KNOWN_SECTIONS",
    "METADATA_KEYS",
    "READERS",
    "SectionReader",
    "read_metadata",
    "split_sections",
]

#: H2 titles the parser reads (lower case, single spaces) -> their role.
KNOWN_SECTIONS = {
    "overview": "overview",
    "prerequisites": "prerequisites",
    "parameters": "parameters",
    "steps": "steps",
    "success criteria": "success_criteria",
    "error recovery": "error_recovery",
    "security considerations": "security",
    "security": "security",
    "examples": "examples",
    "related sops": "related",
    "related": "related",
    "version history": "version_history",
}

#: metadata keys (``**Key**: value`` under the title, or front matter) the engine acts on;
#: any other key is kept and shown. ``sop rule`` prints this table.
METADATA_KEYS = {
    "Title": "the title when the file has no '# Title' (front matter)",
    "Version": "the SOP's version, in every plan and run result",
    "Status": "shown by 'sop list' and the MCP catalog (Draft, Active, ...)",
    "Performer": "who performs lines no handler binds: code (default), agent or person",
    "Owner": "who maintains the SOP (kept, shown)",
    "Last Updated": "when it last changed (kept, shown)",
}

#: other sections whose keyword lines hold for the whole run (``Sop.sop_wide``)
SOP_WIDE_SECTIONS = frozenset({"troubleshooting"})

#: ``reader(reading, heading, line, tokens)`` -> the section's keyword lines
SectionReader = Callable[[Reading, str, int, list[Token]], list[Action]]


def read_metadata(
    r: Reading, toks: list[Token], meta: dict[str, str], meta_lines: dict[str, int]
) -> None:
    """``**Key**: value`` lines between the H1 and the first section."""
    for tok in toks:
        if tok["type"] == "paragraph":
            entries = [
                (tok["_line"] + k, ln)
                for k, ln in enumerate(tok.get("text", "").rstrip("\n").split("\n"))
            ]
        elif tok["type"] == "list":
            entries = [(item["_line"], first_text(item)) for item in tok["children"]]
        else:
            continue
        for line, raw in entries:
            label = bold_label(raw.strip())
            if label is None:
                continue
            key, value = label
            if key in meta:
                r.diag(
                    "SOP009",
                    WARNING,
                    line,
                    f"metadata '{key}' given twice (line {meta_lines[key]}): keep one",
                )
            meta[key] = r.plain(value)
            meta_lines[key] = line


def _related(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    for tok in toks:
        if tok["type"] != "list":
            continue
        for item in tok["children"]:
            for title, target in r.links(first_text(item)):
                r.related.append(Link(title, target, item["_line"]))
    return []


def _error_recovery(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    found = False
    for tok in toks:
        if tok["type"] == "table":
            found = True
            for part in tok["children"]:
                if part["type"] != "table_body":
                    continue
                for row in part["children"]:
                    cells = [r.plain(c.get("text", "")) for c in row["children"]]
                    _recovery_row(r, cells, row["_line"])
        elif tok["type"] == "list":
            for item in tok["children"]:
                label = bold_label(first_text(item).strip())
                if label is not None:
                    found = True
                    _recovery_row(r, [r.plain(label[0]), r.plain(label[1])], item["_line"])
    if not found:
        r.diag(
            "SOP040",
            WARNING,
            line,
            f"'## {heading}' has no table: write '| Error Type | Recovery Procedure |' rows",
        )
    return []


def _recovery_row(r: Reading, cells: list[str], line: int) -> None:
    if len(cells) < 2 or not cells[0] or not cells[1]:
        r.diag(
            "SOP041",
            WARNING,
            line,
            "recovery row needs an error type and a recovery "
            "procedure: '| Rate limited | Retry up to 3 times with backoff |'",
        )
        return
    r.recovery.append(
        RecoveryRule(error_type=cells[0], procedure=cells[1], line=line, **interpret(cells[1]))
    )


def _security(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    for tok in toks:
        if tok["type"] == "list":
            for item in tok["children"]:
                act = keyword_item(
                    r,
                    item,
                    ActionKind.GUARD,
                    None,
                    "security",
                    None,
                    where="Security Considerations",
                )
                if act is not None:
                    r.guards.append(act)
    return []


def _overview(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    r.overview.extend(r.plain(t.get("text", "")) for t in toks if t["type"] == "paragraph")
    return []


def _prerequisites(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    r.prerequisites.extend(r.item_texts(toks))
    return []


def _success_criteria(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    r.criteria.extend(r.item_texts(toks))
    return []


def _version_history(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    r.history.extend(r.item_texts(toks))
    return []


def _parameters(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    found = read_parameters(r, toks)
    r.sop_wide.extend(found)  # acquiring the parameters is part of every run
    return found


def _steps(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    r.steps_line = r.steps_line or line
    read_steps(r, toks)
    return []


def _examples(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    read_examples(r, toks)
    return []


def other_section(r: Reading, heading: str, line: int, toks: list[Token]) -> list[Action]:
    """A section the parser does not know: only its keyword lines are read. Those of
    ``## Troubleshooting`` hold for the whole run: SOP-wide (plan, coverage)."""
    if " ".join(heading.lower().split()) in SOP_WIDE_SECTIONS:
        found = loose_actions(r, toks, "troubleshooting")
        r.sop_wide.extend(found)
        return found
    return loose_actions(r, toks)


#: each known section's role (``KNOWN_SECTIONS`` values) -> its reader
READERS: dict[str, SectionReader] = {
    "overview": _overview,
    "prerequisites": _prerequisites,
    "parameters": _parameters,
    "steps": _steps,
    "success_criteria": _success_criteria,
    "error_recovery": _error_recovery,
    "security": _security,
    "examples": _examples,
    "related": _related,
    "version_history": _version_history,
}


def split_sections(
    r: Reading, tokens: list[Token]
) -> tuple[str, int, list[Token], list[tuple[str, int, list[Token]]]]:
    """The title (first H1) and its line, the tokens before the first H2 (the metadata),
    and each ``## Section`` as (heading, line, tokens); a second H1 is SOP007."""
    title = ""
    title_line = 0
    sections: list[tuple[str, int, list[Token]]] = []
    preamble: list[Token] = []
    body: list[Token] = preamble
    for tok in tokens:
        if tok["type"] == "heading" and tok["attrs"]["level"] <= 2:
            heading = r.plain(tok.get("text", ""))
            if tok["attrs"]["level"] == 1 and not title:
                title, title_line = heading, tok["_line"]
                body = preamble
                continue
            if tok["attrs"]["level"] == 1:
                r.diag(
                    "SOP007",
                    WARNING,
                    tok["_line"],
                    f"second H1 '# {heading}': an SOP has one '# Title'; make this a '## ' section",
                )
            body = []
            sections.append((heading, tok["_line"], body))
        else:
            body.append(tok)
    return title, title_line, preamble, sections
