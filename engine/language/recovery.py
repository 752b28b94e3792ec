"""The Error Recovery vocabulary: recovery prose -> a retry / escalation policy.

The vocabulary is small and documented so an author knows what the engine will do:

- ``retry``, ``wait and retry``                        -> retry
- ``retry up to N times``, ``up to N times``,
  ``max N retries``, ``maximum N retries``, ``N retries`` -> retry, max_retries = N
- ``exponential backoff``, ``with backoff``, ``backoff`` -> backoff (and retry)
- ``do not retry``, ``don't retry``, ``never retry``, ``no retry`` -> retry = False
- ``escalate``, ``escalate to X``                       -> escalate (escalate_to = X)
- ``notify``, ``notify user`` (or customer, ...), ``notify X`` -> notify (notify_to = X)
- ``block transaction``                                 -> block

A recovery is split into clauses at commas, semicolons and parentheses; a clause
with any word outside the vocabulary is kept whole in ``unknown_phrases`` (lint
warns about it), so nothing is silently ignored. "Do not retry" wins over "retry".
Matching walks words left to right: no regular expressions, no backtracking.
"""

from __future__ import annotations

from typing import TypedDict

__all__ = ["VOCABULARY", "RecoveryFields", "interpret"]

#: the vocabulary as authors write it -> what the engine does (``sop rule`` prints it;
#: a test proves ``interpret`` understands every phrase here)
VOCABULARY: tuple[tuple[str, str], ...] = (
    ("Retry", "retry the failed line"),
    ("Wait and retry", "retry the failed line"),
    ("Retry up to 3 times", "retry, at most N times"),
    ("Max 3 retries", "retry, at most N times"),
    ("Exponential backoff", "retry with exponential backoff and jitter"),
    ("Do not retry", "never retry (wins over any retry phrase)"),
    ("Escalate to supervisor", "escalate (to whom, as written)"),
    ("Notify user", "notify the user (or customer, team, owner, ...)"),
    ("Block transaction", "block the transaction"),
)


class RecoveryFields(TypedDict):
    """Keyword arguments for :class:`engine.model.RecoveryRule` (besides type, text, line)."""

    retry: bool | None
    max_retries: int | None
    backoff: bool
    escalate: bool
    escalate_to: str | None
    notify: bool
    notify_to: str | None
    block: bool
    unknown_phrases: tuple[str, ...]


_FILLER = frozenset({"and", "then", "with", "the", "a", "an", "immediately", "automatically"})
_NOTIFY_WHOM = frozenset(
    {"user", "users", "customer", "customers", "caller", "owner", "team", "admin", "operator"}
)
_SEPARATORS = str.maketrans({",": "\n", ";": "\n", "(": "\n", ")": "\n", ".": "\n"})


def _int(word: str) -> int | None:
    word = word.strip()
    return int(word) if word.isdigit() and len(word) < 6 else None


def _clause(words: list[str], out: RecoveryFields) -> bool:
    """Apply one clause; True when every word in it belongs to the vocabulary."""
    i, n, known = 0, len(words), True
    while i < n:
        w = words[i]
        nxt = words[i + 1] if i + 1 < n else ""
        if w in _FILLER:
            i += 1
        elif w in ("do", "don't", "dont", "never", "no") and nxt in ("retry", "retries"):
            out["retry"] = False
            i += 2
        elif w == "do" and nxt == "not" and i + 2 < n and words[i + 2] == "retry":
            out["retry"] = False
            i += 3
        elif w == "wait":
            i += 1
        elif w in ("retry", "retries", "retried", "reattempt"):
            if out["retry"] is not False:
                out["retry"] = True
            i += 1
            count = _int(nxt)
            if count is not None and i + 1 < n and words[i + 1] in ("times", "time"):
                out["max_retries"] = count  # "retry 3 times"
                i += 2
        elif w == "up" and nxt == "to" and i + 2 < n and _int(words[i + 2]) is not None:
            out["max_retries"] = _int(words[i + 2])
            i += 3
            if i < n and words[i] in ("times", "time", "retries", "attempts", "tries"):
                i += 1
            if out["retry"] is not False:
                out["retry"] = True
        elif (w in ("max", "maximum") and _int(nxt) is not None) or (w, nxt) == ("at", "most"):
            j = i + 1 if w != "at" else i + 2  # "at most N"
            count = _int(words[j]) if j < n else None
            if count is None:
                return False
            out["max_retries"] = count
            i = j + 1
            if i < n and words[i] in ("retries", "retry", "times", "attempts", "tries"):
                i += 1
            if out["retry"] is not False:
                out["retry"] = True
        elif _int(w) is not None and nxt in ("retries", "attempts", "tries"):
            out["max_retries"] = _int(w)
            if out["retry"] is not False:
                out["retry"] = True
            i += 2
        elif w == "exponential" and nxt == "backoff":
            out["backoff"] = True
            i += 2
        elif w == "backoff":
            out["backoff"] = True
            i += 1
        elif w == "escalate":
            out["escalate"] = True
            if nxt == "to" and i + 2 < n:
                out["escalate_to"] = " ".join(words[i + 2 :])
                return True
            i += 1
        elif w == "notify":
            out["notify"] = True
            i += 1
            if i < n and words[i] == "the":
                i += 1
            if i < n and words[i] in _NOTIFY_WHOM:
                out["notify_to"] = words[i]
                i += 1
            elif i < n and words[i] not in _FILLER:  # "notify on-call": whom, to the clause's end
                end = words.index("and", i) if "and" in words[i:] else n
                out["notify_to"] = " ".join(words[i:end])
                i = end
        elif w == "block" and nxt in ("transaction", "payment", "charge"):
            out["block"] = True
            i += 2
        elif w == "block" and nxt == "the" and i + 2 < n and words[i + 2] == "transaction":
            out["block"] = True
            i += 3
        else:
            known = False
            i += 1
    return known


def interpret(phrase: str) -> RecoveryFields:
    """The policy a recovery phrase states; what it does not understand is listed, not dropped."""
    out: RecoveryFields = {
        "retry": None,
        "max_retries": None,
        "backoff": False,
        "escalate": False,
        "escalate_to": None,
        "notify": False,
        "notify_to": None,
        "block": False,
        "unknown_phrases": (),
    }
    unknown: list[str] = []
    for raw_clause in phrase.translate(_SEPARATORS).split("\n"):
        text = " ".join(raw_clause.split())
        if not text:
            continue
        words = [w.strip("`*_\"'!?:") for w in text.lower().split()]
        if not _clause([w for w in words if w], out):
            unknown.append(text)
    if out["backoff"] and out["retry"] is None:
        out["retry"] = True
    if out["retry"] is False:
        out["max_retries"] = None
    out["unknown_phrases"] = tuple(unknown)
    return out
