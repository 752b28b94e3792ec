"""Inline conditions on a parameter: "If consolidate is true, you MUST ..." and
"For PDD mode: You MUST ...". Agent SOPs write a branch inside the sentence instead of
under a ``**For X**:`` label; read as a branch (``Action.branch``, a ``Branch`` of the
step), the planner's branch selection skips the line when the parameter says otherwise.

Only a condition the parser can decide becomes one: a declared parameter compared with a
value ("is true", "is pdd"), or a ``For X`` whose X is one of a parameter's Values.
Anything else ("If project_name is not provided, ...") stays a plain obligation, run
always: a condition the engine cannot evaluate must not silently drop a MUST.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from engine.model import Parameter

__all__ = ["inline_condition"]

_IF = re.compile(
    r"(?:If|When)\s+`?([A-Za-z_][\w-]{0,63})`?\s+is\s+(?:set\s+to\s+)?"
    r"[`\"']?([\w.-]{1,64})[`\"']?\s*(?:,|:|then\b)"
)
_TRUTH = frozenset({"true", "false", "yes", "no"})
_FOR = re.compile(r"For\s+([^:,]{1,60}?)\s*:")

#: a branch label -> (parameter, value), or None (``steps._match_value``)
ValueOf = Callable[[str], "tuple[str, str] | None"]


def inline_condition(
    text: str, params: list[Parameter], value_of: ValueOf
) -> tuple[str, str, str] | None:
    """(label, parameter, value) of the condition ``text`` starts with, or None."""
    if text[:3] in ("If ", "Whe"):
        found = _IF.match(text)
        if found is None:
            return None
        name, value = found.group(1), found.group(2)
        if not any(p.name == name for p in params):
            return None
        if value.lower() not in _TRUTH:  # "is provided", "is not ...": not a value
            resolved = value_of(value)
            if resolved is None or resolved[0] != name:
                return None
            value = resolved[1]
        return f"{name} is {value}", name, value
    if text[:4] == "For ":
        found = _FOR.match(text)
        if found is None:
            return None
        label = found.group(1)
        words = label.split()
        if len(words) > 1 and words[-1].lower() == "mode":
            label = " ".join(words[:-1])
        resolved = value_of(label)
        if resolved is None:
            return None
        return found.group(1), resolved[0], resolved[1]
    return None
