"""RFC 2119 keywords in SOP lines: the upper-case MUST / SHOULD / MAY that make a line
an action (RFC 8174: only upper case counts)."""

from __future__ import annotations

from dataclasses import dataclass

from engine.model import KEYWORDS, Level

__all__ = ["LOWER_MODALS", "PUNCT", "Keyword", "find_keyword"]

_SINGLE_KEYWORDS = frozenset(
    {"MUST", "SHALL", "SHOULD", "MAY", "REQUIRED", "RECOMMENDED", "OPTIONAL"}
)
#: lower-case words an author may have meant as keywords (SOP021)
LOWER_MODALS = frozenset({"must", "should", "may", "shall"})
PUNCT = ",.;:!?)("


@dataclass
class Keyword:
    level: Level
    keyword: str
    text: str  # the item's plain text without keyword (and a "You" before it)


def find_keyword(plain: str) -> Keyword | None:
    """The first upper-case RFC 2119 keyword, anywhere in the sentence (RFC 8174)."""
    words = plain.split()
    for i, word in enumerate(words):
        if not word[:1].isupper() and word[:1] != "(":
            continue  # keywords are upper case
        core = word.strip(PUNCT)
        if core not in _SINGLE_KEYWORDS and core != "NOT":
            continue
        nxt = words[i + 1].strip(PUNCT) if i + 1 < len(words) else ""
        if core in _SINGLE_KEYWORDS:
            end = i + 1
            written = core
            if nxt == "NOT" and core in ("MUST", "SHALL", "SHOULD"):
                written, end = f"{core} NOT", i + 2
        elif nxt == "RECOMMENDED":
            written, end = "NOT RECOMMENDED", i + 2
        else:
            continue
        begin = i - 1 if i > 0 and words[i - 1] in ("You", "you") else i
        text = " ".join(words[:begin] + words[end:])
        return Keyword(KEYWORDS[written], written, text)
    return None
