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
# RFC 8174: only upper-case keywords are keywords; "You" may be any case.
_KEYWORD = (
    r"(?:[Yy][Oo][Uu] )?(?:MUST NOT|SHALL NOT|SHOULD NOT|NOT RECOMMENDED|MUST|SHALL|REQUIRED"
    r"|SHOULD|RECOMMENDED|MAY|OPTIONAL)\b[ :,]*"
)
# One match removes the leading list markers (the longest run), then a keyword right
# after them, if any.
_LEAD = re.compile(rf"(?:{_MARKER})*+(?:{_KEYWORD})?")
_LEAD_FIRST = frozenset("-+0123456789MSRNOYy")  # what a marker or a keyword starts with
_CURLY = re.compile(r"[\u2018\u2019\u201c\u201d]")
_QUOTES = {"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'}
_TRAILING = " .,;:!?"


def clean(text: str) -> str:
    """Markup, spacing, the leading keyword and trailing punctuation removed; case kept."""
    # each substitution only where its character occurs (the regexes scan every position)
    if not text.isascii():
        text = _CURLY.sub(lambda m: _QUOTES[m.group(0)], text)
    if "[" in text:
        text = _LINK.sub(r"\1", text)
    if "\\" in text:
        text = _BACKSLASH_ESCAPE.sub(r"\1", text)
    text = text.replace("`", "").replace("*", "")
    if "_" in text:
        text = _UNDERSCORE.sub("", text)
    text = " ".join(text.split())
    if text and text[0] in _LEAD_FIRST:  # markers start with an ASCII digit, not any \d
        lead = _LEAD.match(text)
        if lead is not None:
            text = text[lead.end() :]
    return text.rstrip(_TRAILING)


def normalize(text: str) -> str:
    """The lookup key: ``clean`` folded to lower case."""
    return clean(text).lower()
