"""``sop rule``: the SOP format rule for agents that write SOPs, generated from the grammar.

Every list in the rule is read from the table the parser itself reads with (section
names, step block labels, RFC 2119 keywords, parameter types and details, the recovery
vocabulary, the diagnostic code tables in the parser's and lint's docstrings), so the
rule cannot drift from what the engine accepts: add a section to ``KNOWN_SECTIONS`` and
the rule names it. Only the one-line explanations live here; a table entry without
one still appears, with a plain description.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from engine.language import lint, parser
from engine.language.catalog import SUFFIX
from engine.language.param_schema import DETAIL_KEYS, TYPES
from engine.language.recovery import VOCABULARY
from engine.language.sections import KNOWN_SECTIONS, METADATA_KEYS
from engine.language.steps import BLOCK_LABELS
from engine.model import KEYWORDS, Level

__all__ = ["diagnostic_codes", "render_rule"]

#: what each section role is for (the roles come from ``KNOWN_SECTIONS``)
_SECTION_ROLES = {
    "overview": "what the procedure does and when to use it (first paragraph = description)",
    "prerequisites": "what must hold first; 'X environment variable configured' is checked",
    "parameters": "the inputs; becomes a JSON Schema that validates every run",
    "steps": "the numbered steps, run in order (required)",
    "success_criteria": "how to tell the procedure succeeded",
    "error_recovery": "a table: error type -> recovery, in the vocabulary below",
    "security": "SOP-wide MUST/SHOULD/MAY lines, run as guards before step 1",
    "examples": "YAML Input / Expected Output blocks, run as tests by `sop test`",
    "related": "links to other SOPs",
    "version_history": "a list of versions and what changed",
}
#: what each step block does (the blocks come from ``BLOCK_LABELS``)
_BLOCK_ROLES = {
    "purpose": "prose: why the step exists",
    "actions": "list items, each with an RFC 2119 keyword: the lines that run",
    "constraints": "same as Actions (the Agent SOP spelling)",
    "validation": "checks: enforced like MUST unless a weaker keyword says otherwise",
    "error_handling": "'If <condition>: <response>' items; a quoted message is returned",
}
_LEVEL_MEANING = {
    Level.MUST: "required: an unbound MUST refuses the run before anything happens",
    Level.MUST_NOT: "prohibited: required like MUST",
    Level.SHOULD: "recommended: skipped with a reason when nothing performs it",
    Level.SHOULD_NOT: "discouraged",
    Level.MAY: "optional",
}
_CODE_ROW = re.compile(r"^(SOP\d{3})\s+(error|warning|info)\s+(.*)$")


def diagnostic_codes() -> list[tuple[str, str, str]]:
    """(code, severity, meaning) from the parser's and lint's own code tables (docstrings)."""
    rows: list[tuple[str, str, str]] = []
    for doc in (parser.__doc__ or "", lint.__doc__ or ""):
        current: list[str] | None = None
        for line in doc.splitlines():
            found = _CODE_ROW.match(line.strip())
            if found is not None:
                current = list(found.groups())
                rows.append((current[0], current[1], current[2]))
            elif current is not None and line.startswith(" ") and line.strip()[:1] not in "=":
                current[2] = f"{current[2]} {line.strip()}"
                rows[-1] = (current[0], current[1], current[2])
            else:
                current = None
    return [(c, s, m.replace("``", "`")) for c, s, m in rows]


def _title(name: str) -> str:
    return " ".join("SOPs" if w == "sops" else w.capitalize() for w in name.split())


def _grouped(table: dict[str, str]) -> dict[str, list[str]]:
    """value -> the keys that map to it, in table order."""
    out: dict[str, list[str]] = {}
    for key, value in table.items():
        out.setdefault(value, []).append(key)
    return out


def _quoted(words: Iterable[str]) -> str:
    return ", ".join(f"`{w}`" for w in words)


def render_rule() -> str:
    """The rule as markdown, ready for an agent's rules file."""
    out = [
        "# Writing SOPs for sop-engine",
        "",
        "An SOP is a markdown file `sops/NAME" + SUFFIX + "` (NAME: lowercase words joined by "
        "hyphens). The engine parses it into steps of MUST / SHOULD / MAY lines, binds each "
        "line to a handler or a performer, and runs it. Check a file with `sop lint PATH` "
        "and see what would run with `sop plan NAME`. This rule is generated from the "
        "parser's own tables (`sop rule`).",
        "",
        "## Layout",
        "",
        "- One `# Title` line first; metadata as `**Key**: value` lines under it "
        "(`**Version**: 1.0.0`) or as YAML front matter. The keys the engine acts on "
        "(any other is kept):",
        *(f"  - `**{key}**`: {meaning}" for key, meaning in METADATA_KEYS.items()),
        "- Then `## Section` headings (case-insensitive). Unknown sections are kept as text; "
        "their keyword lines are still read. The sections the engine reads:",
    ]
    for role, names in _grouped(KNOWN_SECTIONS).items():
        spelled = " or ".join(f"`## {_title(n)}`" for n in names)
        out.append(f"  - {spelled}: {_SECTION_ROLES.get(role, 'read by the parser')}")
    out += [
        "",
        "## Steps",
        "",
        "- Under `## Steps`, each step is `### N. Title`, numbered 1..N in order.",
        "- Inside a step, a bold label on its own line opens a block "
        "(`**Actions**:`; the colon may sit inside the bold):",
    ]
    for block, labels in _grouped(BLOCK_LABELS).items():
        spelled = " / ".join(f"`**{_title(label)}**:`" for label in labels)
        out.append(f"  - {spelled}: {_BLOCK_ROLES.get(block, 'read by the parser')}")
    out += [
        "- `**For X**:` opens a branch selected by a parameter value "
        "(`**For Charges**:` -> operation = charge). Code blocks are documentation; "
        "the engine never runs code from markdown.",
        "",
        "## Keywords (RFC 2119, upper case only: RFC 8174)",
        "",
        "One keyword per line sets its level; a lower-case 'must' sets nothing (a warning). "
        "'You MUST ...' is read like 'MUST ...'. Write one obligation per list item.",
        "",
    ]
    for level in Level:  # strongest first
        words = [word for word, its in KEYWORDS.items() if its is level]
        if words:
            meaning = _LEVEL_MEANING.get(level, "")
            out.append(f"- {_quoted(words)}: {meaning}".rstrip(": "))
    out += [
        "",
        "A MUST NOT / SHOULD NOT line gives its reason ('because ...', or in parentheses).",
        "",
        "## Parameters",
        "",
        "- Each parameter is a list item `- **name** (type): description`, under "
        "`### Required` or `### Optional` (or `(type, required)`).",
        f"- Types: {_quoted(TYPES)}.",
        "- Details are nested `Key: value` items; the keys the schema enforces:",
    ]
    for role, keys in DETAIL_KEYS.items():
        out.append(f"  - {role}: {_quoted(keys)}")
    out += [
        "- `Values: a | b`, `Format: pattern` (RE2, anchored), `Default: x` (or a generated "
        "UUID), `Constraints: Must be positive, max 99999999`, `Max length: 500`, "
        "'Required for charge operations' (a conditional requirement). Any other phrase "
        "is reported as not enforced.",
        "",
        "## Error Handling and Error Recovery",
        "",
        "- In a step: `**Error Handling**:` items `If <condition>: <response>`; a quoted "
        'message (`Return error with "Customer not found"`) is what the run returns.',
        "- `## Error Recovery`: a table `| Error Type | Recovery Procedure |`. "
        "The procedure is read in this vocabulary (any other phrase is a lint warning):",
    ]
    for phrase, meaning in VOCABULARY:
        out.append(f"  - `{phrase}`: {meaning}")
    out += [
        "",
        "## Examples",
        "",
        "- Under `## Examples`, each `### Example N: title` holds an Input and an Expected "
        "Output YAML block; ids such as `cus_ABC123` are symbols bound by earlier outputs.",
        "",
        "## Diagnostics (`sop lint`)",
        "",
        "Fix every error; warnings fail `sop lint --strict`.",
        "",
    ]
    for code, severity, meaning in diagnostic_codes():
        out.append(f"- {code} ({severity}): {meaning}")
    return "\n".join(out) + "\n"
