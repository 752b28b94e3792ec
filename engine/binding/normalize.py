"""Text normalization shared by SOP lines and handler patterns.

Both sides of a binding go through the same function, so reformatting a line
(bullet style, bold, backticks, spacing, a trailing period, the RFC 2119 keyword,
a leading "You") never breaks its binding, while changing a word or a number does.

``clean`` keeps the letters' case so that placeholder captures keep it too
(``cus_ABC123``); ``normalize`` is the case-folded key used for lookups.
"""

from __future__ import annotations

import re

# Private-use code points stand for placeholders while a pattern is normalized;
# they count as word characters so "pi_{id}" keeps its underscore.
SENTINEL_BASE = 0xE000
SENTINEL_MAX = 0xF8FF
_WORDISH = r"[^\W_]|[\ue000-\uf8ff]"

_MARKER = r"(?:[-+]|\d{1,9}[.)]) (?:\[[ xX]\] )?"  # "- ", "1. ", "2) ", "- [x] "
# Neither part may contain "[": each attempt then stops at the next "[", so a line of
# 150,000 "[" (or "[a](" repeated) is one pass, not one scan per bracket (quadratic).
_LINK = re.compile(r"!?\[([^\[\]]*)\]\([^\[)]*\)")
_BACKSLASH_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!>~|])")
# An underscore run is emphasis unless it sits between two word characters
# (customer_id keeps its underscore; _emphasis_ loses both).
_UNDERSCORE = re.compile(rf"(?<!{_WORDISH})_+|_+(?!{_WORDISH})")
# In ASCII text, whether _UNDERSCORE has anything to remove: an underscore without a
# letter or digit on each side. Starting with "_", it skips to the underscores, where
# _UNDERSCORE tries its lookbehind at every position (ten times slower on a line).
_LOOSE_UNDERSCORE = re.compile(r"_(?:(?<![A-Za-z0-9]_)|(?![A-Za-z0-9]))")
# RFC 8174: only upper-case keywords are keywords; "You" may be any case.
_KEYWORD = (
    r"(?:[Yy][Oo][Uu] )?(?:MUST NOT|SHALL NOT|SHOULD NOT|NOT RECOMMENDED|MUST|SHALL|REQUIRED"
    r"|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b[ :,]*"
)
# One match removes the leading list markers (the longest run), then a keyword right
# after them, if any: a single regex call per line on the hot path.
_LEAD = re.compile(rf"(?:{_MARKER})*+(?:{_KEYWORD})?")
_LEAD_FIRST = frozenset("-+0123456789MSRNOYy")  # what a marker or a keyword starts with
_KEYWORDS = frozenset(["MUST", "SHALL", "REQUIRED", "SHOULD", "RECOMMENDED", "MAY", "OPTIONAL"])
_BULLETS = frozenset(["-", "+"])
_SPECIAL = re.compile(r"[*_`\[\\\u2018\u2019\u201c\u201d]")
_CURLY = re.compile(r"[\u2018\u2019\u201c\u201d]")
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
_TRAILING = " .,;:!?"


def _strip_markup(text: str) -> str:
    if not text.isascii() and _CURLY.search(text) is not None:
        text = _CURLY.sub(lambda m: _QUOTES[m.group(0)], text)
    if "[" in text:
        text = _LINK.sub(r"\1", text)
    if "\\" in text:
        text = _BACKSLASH_ESCAPE.sub(r"\1", text)
    text = text.replace("`", "").replace("*", "")
    if "_" in text and (not text.isascii() or _LOOSE_UNDERSCORE.search(text) is not None):
        text = _UNDERSCORE.sub("", text)
    return text


def clean(text: str) -> str:
    """Markup, spacing, the leading keyword and trailing punctuation removed; case kept.

    Hot path (every line, every lookup): plain text skips the markup regexes, and the
    usual leading keyword goes without the ``_LEAD`` regex.
    """
    if text.isascii():  # no curly quotes: five substring checks beat a regex scan
        if "*" in text or "`" in text or "_" in text or "[" in text or "\\" in text:
            text = _strip_markup(text)
    elif _SPECIAL.search(text) is not None:
        text = _strip_markup(text)
    words = text.split()
    if not words:
        return ""
    first = words[0]
    if first[0] not in _LEAD_FIRST:
        return " ".join(words).rstrip(_TRAILING)
    # the usual leads word by word: "MUST x" and "- MUST x" (the keyword is a whole
    # word), when what follows cannot be taken too: "NOT" (a two-word keyword), ":"
    # or "," (which _LEAD also takes). Anything else is _LEAD's.
    lead_words = 1 if first in _KEYWORDS else 0
    if not lead_words and first in _BULLETS and len(words) > 2 and words[1] in _KEYWORDS:
        lead_words = 2
    if lead_words and len(words) > lead_words and words[lead_words][0] not in ":,N":
        return " ".join(words[lead_words:]).rstrip(_TRAILING)
    text = " ".join(words)
    lead = _LEAD.match(text)
    if lead is not None:
        text = text[lead.end() :]
    return text.rstrip(_TRAILING)


def normalize(text: str) -> str:
    """The lookup key: ``clean`` folded to lower case."""
    return clean(text).lower()
