"""Handler patterns: literal text with typed placeholders, compiled to anchored regexes.

Syntax (after the same normalization as SOP lines, see ``engine.normalize``)::

    verify customer_id exists in Stripe          literal
    refund {payment_intent}                      {name}    one token (no white space)
    set appropriate timeout ({seconds:d} seconds) {name:d}  integer: 30, -2, 1,000 (commas
                                                            only as thousands groups) -> int
    retry after {delay:f} seconds               {name:f}  number: 1.5, 30, 1,000.25 -> float
    notify {team:w}                              {name:w}  word characters only -> str
    require confirmation for refunds > ${threshold:d}      "$" (any text) before a placeholder
    literal braces                               {{ and }}

Why no catastrophic backtracking: every placeholder class excludes white space,
a token also excludes the literal character that follows it, and every quantifier
is possessive, so each placeholder has exactly one way to match.

Parsing a pattern is cheap (no regex compilation); the regex is compiled on first
use, so registering thousands of handlers stays fast.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

from engine.errors import BindingError
from engine.normalize import SENTINEL_BASE, SENTINEL_MAX, clean

#: placeholder type -> (regex, converter, witness text used to rank specificity)
_INT = r"[-+]?+(?:\d{1,3}(?:,\d{3})++(?![\d,])|\d++)"
_FLOAT = r"[-+]?+(?:(?:\d{1,3}(?:,\d{3})++(?![\d,])|\d++)(?:\.\d++)?+|\.\d++)"
TYPES: dict[str, tuple[str, str]] = {
    "": ("token", r"[^\s{excl}]++"),
    "d": ("int", _INT),
    "f": ("float", _FLOAT),
    "w": ("word", r"\w++"),
}
# A sample each type matches; a more general placeholder matches the samples of a
# more specific one but not the reverse: d "7" < f "7.5" < token, d < w "w_7" < token.
_WITNESS = {"": "\u00a7t", "d": "7", "f": "7.5", "w": "w_7"}
_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SENTINEL_SPLIT = re.compile(f"([{chr(SENTINEL_BASE)}-{chr(SENTINEL_MAX)}])")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
PREFIX_WORDS = 4  # patterned handlers are bucketed by up to this many leading words


def _to_int(text: str) -> int:
    return int(text.replace(",", ""))


def _to_float(text: str) -> float:
    return float(text.replace(",", ""))


_CONVERT: dict[str, Any] = {"": str, "d": _to_int, "f": _to_float, "w": str}


@dataclass(frozen=True)
class Placeholder:
    name: str
    type: str  # "", "d", "f", "w"


class Pattern:
    """One parsed pattern: normalized literal parts interleaved with placeholders."""

    __slots__ = (
        "_converters",
        "_regex",
        "_shape",
        "_witness",
        "key",
        "literal",
        "parts",
        "prefix",
        "source",
    )

    def __init__(
        self, source: str, parts: tuple[str | Placeholder, ...], key: str, prefix: str
    ) -> None:
        self.source = source
        self.parts = parts  # literal text (normalized, case kept) or placeholders
        self.key = key  # canonical form: case-folded, placeholders reduced to their type
        self.prefix = prefix  # up to PREFIX_WORDS complete leading words, folded ("" = none)
        self.literal = len(parts) == 1 and isinstance(parts[0], str)
        self._regex: re.Pattern[str] | None = None
        self._witness: str | None = None
        self._converters: tuple[tuple[str, Any], ...] = ()
        self._shape: tuple[int, tuple[tuple[int, str], ...]] | None = None

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    @property
    def regex(self) -> re.Pattern[str]:
        """Compiled on first use: registering thousands of handlers compiles nothing."""
        if self._regex is None:
            converters = tuple((p.name, _CONVERT[p.type]) for p in self.placeholders)
            # text-only captures come straight from groupdict(): no conversion loop
            self._converters = () if all(c is str for _, c in converters) else converters
            self._regex = re.compile(self.source_regex(), re.IGNORECASE)
        return self._regex

    def source_regex(self, *, capture: bool = True) -> str:
        """The anchored-by-fullmatch regex source; without captures for combined prefilters."""
        return _regex_source(self.parts, capture)

    @property
    def witness(self) -> str:
        """A text this pattern matches, built from each placeholder's sample."""
        if self._witness is None:
            self._witness = "".join(
                p if isinstance(p, str) else _WITNESS[p.type] for p in self.parts
            )
        return self._witness

    def witnesses(self) -> tuple[str, ...]:
        """Sample texts: the typed witness, and one with every placeholder as "7"."""
        digits = "".join(p if isinstance(p, str) else "7" for p in self.parts)
        return (self.witness,) if digits == self.witness else (self.witness, digits)

    def match(self, text: str) -> dict[str, Any] | None:
        """Captures (converted) when ``text`` (already ``clean``ed) matches, else None."""
        regex = self._regex if self._regex is not None else self.regex
        found = regex.fullmatch(text)
        if found is None:
            return None
        converters = self._converters
        if not converters:
            return found.groupdict()
        if len(converters) == 1:
            name, convert = converters[0]
            return {name: convert(found.group(1))}
        # the placeholders are the only capturing groups, in order
        return {
            name: convert(value)
            for (name, convert), value in zip(converters, found.groups(), strict=True)
        }

    def shape(self) -> tuple[int, tuple[tuple[int, str], ...]]:
        """Word count and the pure-literal ASCII words (position, folded) of the pattern.

        No placeholder matches white space and both sides are ``clean``ed (single
        spaces), so a line can match only with the same word count and, at each such
        position, the same word: ASCII-only so ``str.lower`` agrees with IGNORECASE.
        """
        if self._shape is not None:
            return self._shape
        words: list[tuple[int, str]] = []
        position = 0
        current = ""
        wild = False
        for part in self.parts:
            if not isinstance(part, str):
                wild = True
                continue
            pieces = part.split(" ")
            for index, piece in enumerate(pieces):
                if index:
                    if not wild and current.isascii():
                        words.append((position, current.lower()))
                    position += 1
                    current, wild = "", False
                current += piece
        if not wild and current.isascii():
            words.append((position, current.lower()))
        self._shape = (position + 1, tuple(words))
        return self._shape

    def covers(self, other: Pattern) -> bool:
        """True when this pattern matches the other's witness text: it is at least as general."""
        return self.regex.fullmatch(other.witness) is not None

    def anchor(self) -> str:
        """The longest complete literal word (folded), to index patterns with no prefix."""
        best = ""
        count = len(self.parts)
        for index, part in enumerate(self.parts):
            if not isinstance(part, str):
                continue
            words = part.lower().split(" ")
            lo = 0 if index == 0 else 1  # a word touching a placeholder is partial
            hi = len(words) if index == count - 1 else len(words) - 1
            for word in words[lo:hi]:
                if len(word) > len(best):
                    best = word
        return best


def _regex_source(parts: tuple[str | Placeholder, ...], capture: bool = True) -> str:
    out: list[str] = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            out.append(re.escape(part))
            continue
        regex = TYPES[part.type][1]
        if part.type == "":
            following = parts[index + 1] if index + 1 < len(parts) else ""
            first = following[0] if isinstance(following, str) and following else ""
            regex = regex.replace("{excl}", re.escape(first) if first.strip() else "")
        out.append(f"(?P<{part.name}>{regex})" if capture else f"(?:{regex})")
    return "".join(out)


def parse_pattern(source: str) -> Pattern:
    """Parse and normalize ``source``; BindingError says what is wrong with it."""
    if not isinstance(source, str) or not source.strip():
        raise BindingError(f"empty handler pattern {source!r}")
    if "{" not in source and "}" not in source:  # literal: the common, fast case
        text = clean(source)
        if not text:
            raise BindingError(f"pattern {source!r} is empty after normalization")
        folded = text.lower()
        return Pattern(source, (text,), folded, folded)
    split = _split_simple(source)
    if split is None:
        pieces, placeholders = _split(source)
    else:
        pieces, placeholders = split
    return _assemble(source, pieces, placeholders)


def _split_simple(source: str) -> tuple[list[str], list[Placeholder]] | None:
    """The common case (no {{, }} or stray brace, valid placeholders) without a regex.

    None means "ask ``_split``": it handles every case and words every error.
    """
    if "{{" in source or "}}" in source:
        return None
    chunks = source.split("{")
    head = chunks[0]
    if "}" in head or len(chunks) > 64:
        return None
    pieces = [head]
    placeholders: list[Placeholder] = []
    for chunk in chunks[1:]:
        body, brace, rest = chunk.partition("}")
        if not brace or "}" in rest:
            return None
        try:
            placeholders.append(_placeholder(source, body, placeholders))
        except BindingError:
            return None
        pieces.append(chr(SENTINEL_BASE + len(placeholders) - 1))
        pieces.append(rest)
    return pieces, placeholders


def _split(source: str) -> tuple[list[str], list[Placeholder]]:
    """Literal pieces with a sentinel per placeholder; BindingError names the bad token."""
    placeholders: list[Placeholder] = []
    pieces: list[str] = []
    last = 0
    for found in _TOKEN.finditer(source):
        pieces.append(source[last : found.start()])
        last = found.end()
        token = found.group(0)
        if token in ("{{", "}}"):
            pieces.append(token[0])
            continue
        if found.group(1) is None:
            raise BindingError(
                f"pattern {source!r}: unbalanced {token!r} at column {found.start() + 1}"
                " (write {{ or }} for a literal brace)"
            )
        placeholders.append(_placeholder(source, found.group(1), placeholders))
        if len(placeholders) > SENTINEL_MAX - SENTINEL_BASE:
            raise BindingError(f"pattern {source!r}: too many placeholders")
        pieces.append(chr(SENTINEL_BASE + len(placeholders) - 1))
    pieces.append(source[last:])
    return pieces, placeholders


def _assemble(source: str, pieces: list[str], placeholders: list[Placeholder]) -> Pattern:
    normalized = clean("".join(pieces))
    parts: list[str | Placeholder] = []
    seen = 0
    inner = len(placeholders) * 2
    for index, piece in enumerate(_SENTINEL_SPLIT.split(normalized)):
        if index % 2 == 0:
            if piece:
                parts.append(piece)
            elif 0 < index < inner:
                raise BindingError(
                    f"pattern {source!r}: placeholders must be separated by literal text"
                )
            continue
        code = ord(piece) - SENTINEL_BASE
        if code >= len(placeholders):
            raise BindingError(f"pattern {source!r}: unexpected character {piece!r}")
        parts.append(placeholders[code])
        seen += 1
    if seen != len(placeholders):
        raise BindingError(f"pattern {source!r}: a placeholder was lost in normalization")
    if not parts:
        raise BindingError(f"pattern {source!r} is empty after normalization")
    return Pattern(source=source, parts=tuple(parts), key=_key(parts), prefix=_prefix(parts))


# valid placeholder bodies seen so far ("n:d" -> Placeholder): a pure function's memo,
# bounded, so registering thousands of patterns validates each distinct body once
_KNOWN: dict[str, Placeholder] = {}
_KNOWN_MAX = 4096


def _placeholder(source: str, body: str, seen: list[Placeholder]) -> Placeholder:
    placeholder = _KNOWN.get(body)
    if placeholder is None:
        name, _, type_ = body.partition(":")
        name, type_ = name.strip(), type_.strip()
        if not _NAME.match(name) or keyword.iskeyword(name) or name == "ctx":
            raise BindingError(f"pattern {source!r}: {{{body}}} is not a valid placeholder name")
        if type_ not in TYPES:
            known = ", ".join(f"{{{name}:{t}}}" if t else f"{{{name}}}" for t in TYPES)
            raise BindingError(f"pattern {source!r}: unknown placeholder type {type_!r} ({known})")
        placeholder = Placeholder(name, type_)
        if len(_KNOWN) < _KNOWN_MAX:
            _KNOWN[body] = placeholder
    name = placeholder.name
    for other in seen:
        if other.name == name:
            raise BindingError(f"pattern {source!r}: placeholder {{{name}}} used twice")
    return placeholder


def _key(parts: list[str | Placeholder]) -> str:
    return "".join([p.lower() if isinstance(p, str) else "{:" + p.type + "}" for p in parts])


def _prefix(parts: list[str | Placeholder]) -> str:
    """Leading complete literal words of a patterned pattern, case-folded."""
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0].lower()  # literal: the whole text
    head = parts[0]
    if not isinstance(head, str):
        return ""
    words = head.lower().split(" ")
    words.pop()  # the last piece runs into the placeholder (or is "" after a space)
    return " ".join(words[:PREFIX_WORDS])


__all__ = ["PREFIX_WORDS", "TYPES", "Pattern", "Placeholder", "parse_pattern"]
