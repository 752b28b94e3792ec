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

__all__ = [
    "LOWER_MODALS",
    "PUNCT",
    "Keyword",
    "find_keyword",
    "may_hold_keyword",
    "mentions_removed",
]

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
# each span bounded (2,000 characters): a hostile run of unclosed backticks or comments
# costs a bounded scan per opener, never a scan to the end of the text per opener
_MENTIONS = re.compile(
    r"(`{1,16})(?:(?!\1).){0,2000}?\1|<!--.{0,2000}?(?:-->|\Z)"
    r"|\"[^\"\n]{0,2000}\"|\u201c[^\u201d\n]{0,2000}\u201d",
    re.DOTALL,
)


#: a keyword's letters anywhere (a cheap test before the word-exact regex)
_HINTS = ("MUST", "SHALL", "SHOULD", "MAY", "REQUIRED", "RECOMMENDED", "OPTIONAL")
_HINT = re.compile("|".join(_HINTS))


def may_hold_keyword(text: str) -> bool:
    """Whether ``text`` holds a keyword's letters: without them it holds no keyword."""
    return any(hint in text for hint in _HINTS)


@dataclass
class Keyword:
    """The RFC 2119 keyword found at the start of a list item, and the item without it."""

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
    if not any(_HINT.search(span) for span in spans):
        return None
    return _MENTIONS.sub(" \u2026 ", raw)


_P = r"[,.;:!?)(]*"  # punctuation a keyword may carry (PUNCT), as in "(MUST)" or "MUST:"
#: one keyword as a whole word (RFC 8174: upper case), two-word forms first. The texts
#: are white space folded, so a word starts after a space: the pattern opens with that
#: space and is matched on ``" " + text``, which lets the regex engine jump from space to
#: space instead of trying every character (a lookbehind cannot be scanned for).
_KEYWORD = re.compile(
    rf" (?=[(,.;:!?)MSNRO])\(?{_P}(?:(MUST|SHALL|SHOULD){_P} {_P}NOT|NOT {_P}RECOMMENDED"
    rf"|(MUST|SHALL|SHOULD|MAY|REQUIRED|RECOMMENDED|OPTIONAL)){_P}(?!\S)"
)


def _keywords(text: str) -> list[re.Match[str]]:
    """Each keyword of ``text`` (white space folded), in order; positions in ``" " + text``."""
    if not may_hold_keyword(text):
        return []
    return list(_KEYWORD.finditer(" " + text))


def _written(m: re.Match[str]) -> str:
    if m.group(1):
        return f"{m.group(1)} NOT"
    return m.group(2) or "NOT RECOMMENDED"


def find_keyword(plain: str, masked: str | None = None) -> Keyword | None:
    """The strongest upper-case RFC 2119 keyword of the sentence (RFC 8174), or None.

    ``masked`` is the plain text with mentions removed (see :func:`mentions_removed`);
    the level is read from it when given, the text always comes from ``plain``."""
    found = _keywords(plain if masked is None else masked)
    if not found:
        return None
    written = [_written(m) for m in found]
    best = written[0]
    for candidate in written[1:]:
        if _RANK[KEYWORDS[candidate]] > _RANK[KEYWORDS[best]]:
            best = candidate
    mixed = tuple(written) if len({_RANK[KEYWORDS[k]] for k in written}) > 1 else ()
    text = plain
    if len(found) == 1:
        lead = _leading(plain)
        if lead is not None and (masked is None or _leading(masked) is not None):
            text = plain[lead:].lstrip()
    return Keyword(KEYWORDS[best], best, text, mixed)


def _leading(text: str) -> int | None:
    """Where the text after a keyword leading ``text`` (after an optional "You") starts."""
    begin = 4 if text[:4] in ("You ", "you ") else 0
    m = _KEYWORD.match(" " + text, begin)  # at the space before the word
    return None if m is None else m.end() - 1
