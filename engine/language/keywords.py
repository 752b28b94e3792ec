"""RFC 2119 keywords in SOP lines: the upper-case MUST / SHOULD / MAY that make a line
an action (RFC 8174: only upper case counts).

A keyword anywhere in the sentence counts; the strongest one sets the level (an item
that says "MAY suggest ..., but MUST wait ..." is an obligation). A keyword leading the
sentence (after an optional "You") is cut from the text; one in mid-sentence keeps the
whole sentence, which reads wrong without it. Keywords quoted, in a code span or in an
HTML comment are mentioned, not used: they set no level.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.model import KEYWORDS, Level

__all__ = ["LOWER_MODALS", "PUNCT", "Keyword", "find_keyword", "mentions_removed"]

_SINGLE_KEYWORDS = frozenset(
    {"MUST", "SHALL", "SHOULD", "MAY", "REQUIRED", "RECOMMENDED", "OPTIONAL"}
)
#: lower-case words an author may have meant as keywords (SOP021)
LOWER_MODALS = frozenset({"must", "should", "may", "shall"})
PUNCT = ",.;:!?)("
#: obligation strength: MUST NOT and MUST bind alike, then SHOULD (NOT), then MAY
_RANK = {
    Level.MUST: 2,
    Level.MUST_NOT: 2,
    Level.SHOULD: 1,
    Level.SHOULD_NOT: 1,
    Level.MAY: 0,
}
#: what can hide a keyword from the level: code spans, HTML comments, double quotes
_MENTION_MARKS = ("`", "<!--", '"', "\u201c")
_MENTIONS = re.compile(
    r"(`+)(?:(?!\1).)*?\1|<!--.*?(?:-->|$)|\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d", re.DOTALL
)


@dataclass
class Keyword:
    level: Level
    keyword: str
    text: str  # the item's plain text; a leading keyword (and a "You" before it) cut
    mixed: tuple[str, ...] = ()  # the keywords as written when their strengths differ


def mentions_removed(raw: str) -> str | None:
    """``raw`` without code spans, HTML comments and quotations; None when none of them
    holds an upper-case keyword (the common case: no second inline pass needed)."""
    if not any(mark in raw for mark in _MENTION_MARKS):
        return None
    spans = [m.group(0) for m in _MENTIONS.finditer(raw)]
    if not any(_keywords(span.replace("`", " ").replace('"', " ").split()) for span in spans):
        return None
    return _MENTIONS.sub(" \u2026 ", raw)


def _keywords(words: list[str]) -> list[tuple[int, int, str]]:
    """(first word, end word, keyword as written) of each keyword in ``words``."""
    found: list[tuple[int, int, str]] = []
    i = 0
    n = len(words)
    while i < n:
        word = words[i]
        if not word[:1].isupper() and word[:1] != "(":
            i += 1
            continue  # keywords are upper case
        core = word.strip(PUNCT)
        if core not in _SINGLE_KEYWORDS and core != "NOT":
            i += 1
            continue
        nxt = words[i + 1].strip(PUNCT) if i + 1 < n else ""
        if core in _SINGLE_KEYWORDS:
            if nxt == "NOT" and core in ("MUST", "SHALL", "SHOULD"):
                found.append((i, i + 2, f"{core} NOT"))
                i += 2
                continue
            found.append((i, i + 1, core))
        elif nxt == "RECOMMENDED":
            found.append((i, i + 2, "NOT RECOMMENDED"))
            i += 1
        i += 1
    return found


def find_keyword(plain: str, masked: str | None = None) -> Keyword | None:
    """The strongest upper-case RFC 2119 keyword of the sentence (RFC 8174), or None.

    ``masked`` is the plain text with mentions removed (see :func:`mentions_removed`);
    the level is read from it when given, the text always comes from ``plain``."""
    words = plain.split()
    found = _keywords(words if masked is None else masked.split())
    if not found:
        return None
    best = found[0]
    for candidate in found[1:]:
        if _RANK[KEYWORDS[candidate[2]]] > _RANK[KEYWORDS[best[2]]]:
            best = candidate
    ranks = {_RANK[KEYWORDS[k]] for _, _, k in found}
    mixed = tuple(k for _, _, k in found) if len(ranks) > 1 else ()
    first, end, _ = found[0]
    leading = first == 0 or (first == 1 and words[0] in ("You", "you"))
    if leading and len(found) == 1 and masked is None:
        text = " ".join(words[end:])
    elif leading and len(found) == 1 and masked is not None:
        text = _cut_leading(words, found[0][2])
    else:
        text = " ".join(words)
    return Keyword(KEYWORDS[best[2]], best[2], text, mixed)


def _cut_leading(words: list[str], keyword: str) -> str:
    """``words`` without the keyword that leads them (mentions do not shift the lead)."""
    begin = 1 if words and words[0] in ("You", "you") else 0
    n = len(keyword.split())
    if " ".join(w.strip(PUNCT) for w in words[begin : begin + n]) == keyword:
        return " ".join(words[begin + n :])
    return " ".join(words)
