"""SOP patterns on RE2: a parameter's ``Format`` and an overlay's ``pattern``.

Why RE2: SOP patterns are written by whoever writes the SOP and matched against
whatever a caller sends, so they must run in time linear in the input, whatever the
pattern (``(a+)+$`` included). A pattern RE2 cannot compile (backreferences,
lookaround) is a lint error (SOP120), never matched with Python's backtracking ``re``.
engine.language.params installs :func:`sop_pattern` as jsonschema's ``pattern`` keyword.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import re2

__all__ = ["PATTERN_RULES", "PatternError", "pattern_error", "sop_pattern"]


class PatternError(ValueError):
    """An SOP pattern RE2 cannot compile; the message says why."""


#: What RE2 leaves out, said once in every message about a pattern it refuses.
PATTERN_RULES = (
    "patterns are matched by RE2 in linear time: no backreferences (\\1) or lookaround "
    "((?=...), (?!...), (?<=...), (?<!...))"
)


@lru_cache(maxsize=1024)
def sop_pattern(pattern: str) -> Callable[[str], bool]:
    """``search(text)``: whether ``pattern`` matches somewhere in ``text`` (``re.search``).

    RE2 semantics where they differ from Python's ``re``: ``\\d``/``\\w``/``\\s`` are
    ASCII, and ``$`` is the end of the text (as in ECMA-262, which JSON Schema names),
    not also before a final newline. Raises :class:`PatternError`.
    """
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern on stderr
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "cannot compile"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(str(reason)) from None
    except (UnicodeEncodeError, TypeError) as exc:  # a lone surrogate in the pattern
        raise PatternError(type(exc).__name__) from None
    match = compiled.search

    def search(text: str) -> bool:
        try:
            return match(text) is not None
        except UnicodeEncodeError:  # a lone surrogate: no UTF-8 for RE2, so no match
            return False

    return search


def pattern_error(pattern: str) -> str | None:
    """Why ``pattern`` cannot be an SOP pattern (RE2's reason), or None."""
    try:
        sop_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    return None
