""" "did you mean X?" for a mistyped SOP or parameter name (difflib's close matches).

One wording everywhere a name is refused: the CLI, the Python API and MCP tool errors
all build their messages from here.
"""

from __future__ import annotations

from collections.abc import Iterable

#: difflib's ratio a candidate must reach: "amuont" -> "amount", "refund" -/-> "run".
CUTOFF = 0.6
#: Longer names are not compared (difflib is quadratic; no real name is that long).
MAX_WORD = 200


def close_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word``, if one is close enough (never ``word`` itself)."""
    if len(word) > MAX_WORD:
        return None
    # imported here, not at the top: only a refused name needs difflib, and every
    # start-up (the `sop lint` cold start is a target, README "Speed") would pay for it
    import difflib

    candidates = sorted({c for c in choices if c != word and len(c) <= MAX_WORD})
    found = difflib.get_close_matches(word, candidates, n=1, cutoff=CUTOFF)
    return found[0] if found else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'X'?"`` for the closest choice, else ``""``: appended to the
    sentence that refuses ``word`` ("unknown SOP 'refnd'; did you mean 'refund'?")."""
    match = close_match(word, choices)
    return f"; did you mean {match!r}?" if match is not None else ""


__all__ = ["CUTOFF", "close_match", "did_you_mean"]
