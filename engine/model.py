"""The SOP document model: frozen, typed, free of I/O.

Every element keeps the 1-based source line it came from, so lint, coverage and
plan can point an author at ``file:line``.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

_T = TypeVar("_T")


class Level(enum.Enum):
    """RFC 2119 requirement levels (upper case only, per RFC 8174)."""

    MUST = "MUST"
    MUST_NOT = "MUST NOT"
    SHOULD = "SHOULD"
    SHOULD_NOT = "SHOULD NOT"
    MAY = "MAY"

    @property
    def required(self) -> bool:
        """MUST and MUST NOT lines must be bound before a run may start."""
        return self in (Level.MUST, Level.MUST_NOT)

    @property
    def negative(self) -> bool:
        return self in (Level.MUST_NOT, Level.SHOULD_NOT)


#: Every RFC 2119 keyword as written, longest first, mapped to its level.
KEYWORDS: dict[str, Level] = {
    "MUST NOT": Level.MUST_NOT,
    "SHALL NOT": Level.MUST_NOT,
    "SHOULD NOT": Level.SHOULD_NOT,
    "NOT RECOMMENDED": Level.SHOULD_NOT,
    "MUST": Level.MUST,
    "SHALL": Level.MUST,
    "REQUIRED": Level.MUST,
    "SHOULD": Level.SHOULD,
    "RECOMMENDED": Level.SHOULD,
    "MAY": Level.MAY,
    "OPTIONAL": Level.MAY,
}


#: who performs a line: ``code`` (a bound handler, the default), an agent, or a person
PERFORMERS = ("code", "agent", "person")


class ActionKind(enum.Enum):
    ACTION = "action"  # an Actions / Constraints item
    CHECK = "check"  # a Validation item: enforced like MUST unless a weaker keyword says so
    GUARD = "guard"  # a Security Considerations item: SOP-wide, runs before step 1


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Diagnostic:
    """One finding about an SOP file; ``code`` is stable (e.g. ``SOP101``)."""

    code: str
    severity: Severity
    message: str
    line: int
    col: int = 1
    path: str | None = None


@dataclass(frozen=True)
class Action:
    """One bindable line: an action, a check or an SOP-wide guard."""

    kind: ActionKind
    level: Level
    text: str  # the line without its keyword ("verify customer_id exists in Stripe")
    source: str  # the list item as written, inline markup kept
    line: int
    step: int | None  # step number; None for SOP-wide guards
    keyword: str | None = None  # the keyword as written ("MUST NOT", "SHALL"); None if implicit
    block: str = "actions"  # actions | constraints | validation | error_handling | security
    branch: str | None = None  # label of the enclosing "**For X**:" branch, if any
    children: tuple[str, ...] = ()  # nested sub-items, as text
    parent: str | None = None  # id of the item this one is nested in (a task of its own)
    substep: str | None = None  # "4.1": the ``#### 4.1 Title`` sub-step the line is under

    @property
    def id(self) -> str:
        """Stable within one SOP file: where the line is and what kind it is."""
        where = f"step{self.step}" if self.step is not None else "sop"
        return f"{where}:{self.kind.value}:L{self.line}"


@dataclass(frozen=True)
class ParamAttribute:
    """A nested ``Key: value`` item under a parameter (Values, Format, Default, ...)."""

    key: str
    value: str
    line: int


@dataclass(frozen=True)
class Parameter:
    """One item of the Parameters section: what a caller passes in and how it is checked."""

    name: str
    type: str | None  # as written: string, integer, number, boolean, ...; None if absent
    description: str
    required: bool
    line: int
    attributes: tuple[ParamAttribute, ...] = ()
    default: str | None = None  # Agent SOP "(optional, default: "x")"

    def attribute(self, key: str) -> ParamAttribute | None:
        """The first attribute whose key matches, case-insensitively."""
        wanted = key.lower()
        for attr in self.attributes:
            if attr.key.lower() == wanted:
                return attr
        return None


@dataclass(frozen=True)
class CodeBlock:
    """A fenced code block inside a step's branch, kept as written."""

    info: str  # the fence's info string ("python")
    code: str
    line: int


@dataclass(frozen=True)
class Branch:
    """``**For Charges**:`` inside a step; selects on a parameter value."""

    label: str  # "Charges"
    line: int
    step: int
    param: str | None = None  # resolved against the parameters' enums: "operation"
    value: str | None = None  # "charge"
    code: tuple[CodeBlock, ...] = ()
    text: str = ""


@dataclass(frozen=True)
class ErrorRule:
    """``If <condition>: <response>`` under a step's Error Handling."""

    condition: str
    response: str
    line: int
    step: int
    message: str | None = None  # the quoted message, if the response quotes one


@dataclass(frozen=True)
class RecoveryRule:
    """One row of the Error Recovery table, with its recognised policy."""

    error_type: str
    procedure: str
    line: int
    retry: bool | None = None  # True: retryable; False: never retry; None: not said
    max_retries: int | None = None  # "up to 3 times", "max 3 retries" -> 3
    backoff: bool = False
    escalate: bool = False
    notify: bool = False
    unknown_phrases: tuple[str, ...] = ()
    escalate_to: str | None = None  # "escalate to supervisor" -> "supervisor"
    block: bool = False  # "block transaction"
    notify_to: str | None = None  # "notify user" -> "user"; None: not said


@dataclass(frozen=True)
class SubStep:
    """A ``#### 4.1 Title`` heading inside step 4: its lines run after the step's own."""

    number: str  # "4.1"
    title: str
    line: int


@dataclass(frozen=True)
class Step:
    """A ``### Step N: Title`` of the Steps section, with every line the runner may bind."""

    number: int
    title: str
    line: int
    purpose: str = ""
    actions: tuple[Action, ...] = ()  # Actions / Constraints / Error Handling lines;
    # lines under a branch carry ``branch=<label>``
    checks: tuple[Action, ...] = ()  # Validation items
    error_rules: tuple[ErrorRule, ...] = ()
    branches: tuple[Branch, ...] = ()
    text: str = ""  # prose not in a labelled block
    performer: str | None = None  # "**Performer**: agent" under the heading; None: not said
    substeps: tuple[SubStep, ...] = ()


@dataclass(frozen=True)
class Example:
    """An Examples entry: input parameters and the expected outcome ``sop test`` checks."""

    title: str
    line: int
    input: dict[str, Any] = field(default_factory=dict)
    expected: dict[str, Any] = field(default_factory=dict)
    input_line: int = 0  # line of "Input:"; keys' lines in key_lines
    key_lines: dict[str, int] = field(default_factory=dict)  # input key -> line
    raw: str = ""
    number: int | None = None  # "### Example 2: ..." -> 2 (title is then the text after the colon)
    documentation: bool = False  # prose ("Example Input" without YAML): shown, never run


@dataclass(frozen=True)
class Link:
    """A Related SOPs / references link, as written."""

    title: str
    target: str
    line: int


@dataclass(frozen=True)
class Section:
    """Any H2 section, known or not, with its raw markdown."""

    title: str
    line: int
    text: str
    # keyword list items outside Steps / Security (Agent SOP "Constraints for parameter
    # acquisition", Troubleshooting): kept for authors and agents, never bound or run
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True)
class Sop:
    """One parsed SOP file: what every command reads instead of the markdown."""

    name: str  # file name without .sop.md; else a slug of the title
    title: str
    path: str | None
    text: str
    content_hash: str  # sha256 of the text, hex
    metadata: dict[str, str] = field(default_factory=dict)
    metadata_lines: dict[str, int] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
    overview: str = ""
    prerequisites: tuple[str, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    steps: tuple[Step, ...] = ()
    guards: tuple[Action, ...] = ()  # Security Considerations lines: SOP-wide actions
    # Agent SOP parameter-acquisition constraints and Troubleshooting lines: SOP-wide too
    sop_wide: tuple[Action, ...] = ()
    success_criteria: tuple[str, ...] = ()
    recovery: tuple[RecoveryRule, ...] = ()
    examples: tuple[Example, ...] = ()
    related: tuple[Link, ...] = ()
    version_history: tuple[str, ...] = ()
    diagnostics: tuple[Diagnostic, ...] = ()  # what the parser found wrong
    performer: str | None = None  # "**Performer**: agent|person|code" metadata; None: not said

    @property
    def version(self) -> str | None:
        return self.metadata.get("Version") or self.metadata.get("version")

    def performer_of(self, action: Action, default: str | None = None) -> str:
        """Who performs ``action`` when no handler binds it: its step's word, else the
        SOP's, else ``default`` (``--performer``, for files that say nothing), else code."""
        for step in self.steps:
            if step.number == action.step and step.performer is not None:
                return step.performer
        return self.performer or default or "code"

    def parameter(self, name: str) -> Parameter | None:
        for param in self.parameters:
            if param.name == name:
                return param
        return None

    def derived(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()``, once per ``key`` for this SOP, kept with it (its lifetime is the
        Sop's): other modules' readings of an immutable SOP (its parameter schema and
        validator, its lint errors) without a module-level cache."""
        memo: dict[Hashable, Any] | None = self.__dict__.get("_derived")
        if memo is None:
            memo = {}
            object.__setattr__(self, "_derived", memo)  # frozen: the memo is not a field
        if key not in memo:
            memo[key] = compute()
        return cast(_T, memo[key])

    def all_actions(self) -> tuple[Action, ...]:
        """Guards, SOP-wide lines, then each step's actions and checks, in source order."""
        lines: list[Action] = [*self.guards, *self.sop_wide]
        for step in self.steps:
            lines.extend(sorted((*step.actions, *step.checks), key=lambda a: a.line))
        return tuple(lines)

    def to_dict(self, *, include_text: bool = False) -> dict[str, Any]:
        """JSON-ready form (enums as their values), valid against ``schemas/sop.schema.json``.

        The markdown itself is left out unless asked for: ``content_hash`` names it and
        every section keeps its own text.
        """
        data: dict[str, Any] = {"name": self.name, "title": self.title, "path": self.path}
        if include_text:
            data["text"] = self.text
        data["content_hash"] = self.content_hash
        data["version"] = self.version
        for f in dataclasses.fields(self):
            if f.name not in data and f.name != "text":
                data[f.name] = jsonable(getattr(self, f.name))
        return data


def jsonable(value: Any) -> Any:
    """Model (and handler) values -> JSON types; actions gain their ``id``, dates become ISO
    strings, anything else its ``str``."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple | list):
        return [jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        if isinstance(value, Action):
            out["id"] = value.id
        for f in dataclasses.fields(value):
            out[f.name] = jsonable(getattr(value, f.name))
        return out
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
