"""Handler patterns: literal text with typed placeholders, matched as anchored regexes.

Syntax (after the same normalization as SOP lines, see ``engine.binding.normalize``)::

    verify customer_id exists in Stripe          literal
    refund {payment_intent}                      {name}    one token (no white space)
    set appropriate timeout ({seconds:d} seconds) {name:d}  integer: 30, -2, 1,000 (commas
                                                            only as thousands groups) -> int
    retry after {delay:f} seconds               {name:f}  number: 1.5, 30, 1,000.25 -> float
    notify {team:w}                              {name:w}  word characters only -> str
    require confirmation for refunds > ${threshold:d}      "$" (any text) before a placeholder
    literal braces                               {{ and }}

A pattern means its regex and nothing else: literals compared with re.IGNORECASE, each
placeholder's class with possessive quantifiers (every class excludes white space, a
token also the literal character after it), matched with ``fullmatch`` on the ``clean``
line. No catastrophic backtracking: a placeholder can end in one place, or in two for
the ``d``/``f`` alternation ("1,000" grouped, or the plain digits "1").

The regex is compiled on first use, not at registration: a process that loads
thousands of handlers compiles only the ones its SOPs' lines reach (the registry's index
narrows each line to a few candidates, see ``engine.binding.registry``).
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from typing import Any

from engine.binding.normalize import SENTINEL_BASE, SENTINEL_MAX, clean
from engine.errors import BindingError

#: placeholder type -> (name, regex)
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


@dataclass(frozen=True)
class Placeholder:
    name: str
    type: str  # "", "d", "f", "w"


def _to_int(text: str) -> int:
    return int(text.replace(",", ""))


def _to_float(text: str) -> float:
    return float(text.replace(",", ""))


_CONVERT: dict[str, Any] = {"": str, "d": _to_int, "f": _to_float, "w": str}


class Pattern:
    """One parsed pattern: normalized literal parts interleaved with placeholders."""

    def __init__(self, source: str, parts: tuple[str | Placeholder, ...]) -> None:
        self.source = source
        self.parts = parts  # literal text (normalized, case kept) or placeholders
        self.literal = len(parts) == 1 and isinstance(parts[0], str)
        self.placeholders = tuple(p for p in parts if isinstance(p, Placeholder))
        #: canonical form: case-folded, placeholders reduced to their type
        self.key = "".join(p.lower() if isinstance(p, str) else "{:" + p.type + "}" for p in parts)
        #: per word of a matching line, the folded word when the pattern's word there is
        #: all literal, else None (it holds a placeholder). No placeholder matches white
        #: space and both sides are ``clean``ed (single spaces), so a line matches only
        #: with this many words.
        self.words: tuple[str | None, ...] = tuple(
            None if _SENTINEL in word else word
            for word in "".join(
                p.lower() if isinstance(p, str) else _SENTINEL for p in parts
            ).split(" ")
        )
        self.witness = "".join(p if isinstance(p, str) else _WITNESS[p.type] for p in parts)
        self._regex: re.Pattern[str] | None = None  # compiled on first use (see ``regex``)

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"

    @property
    def regex(self) -> re.Pattern[str]:
        """The pattern's meaning, compiled on first use."""
        if self._regex is None:
            self._regex = re.compile(_regex_source(self.parts), re.IGNORECASE)
        return self._regex

    def witnesses(self) -> tuple[str, ...]:
        """Sample texts: the typed witness, and one with every placeholder as "7"."""
        digits = "".join(p if isinstance(p, str) else "7" for p in self.parts)
        return (self.witness,) if digits == self.witness else (self.witness, digits)

    def match(self, text: str) -> dict[str, Any] | None:
        """Captures (converted) when ``text`` (already ``clean``ed) matches, else None."""
        found = self.regex.fullmatch(text)
        if found is None:
            return None
        return {p.name: _CONVERT[p.type](found.group(p.name)) for p in self.placeholders}

    def matches(self, text: str) -> bool:
        return self.regex.fullmatch(text) is not None

    def covers(self, other: Pattern) -> bool:
        """True when this pattern matches the other's witness text: it is at least as general."""
        return self.matches(other.witness)


_SENTINEL = chr(SENTINEL_BASE)  # stands for any placeholder in ``Pattern.words``


def parse_pattern(source: str) -> Pattern:
    """Parse and normalize ``source``; BindingError says what is wrong with it."""
    if not isinstance(source, str) or not source.strip():
        raise BindingError(f"empty handler pattern {source!r}")
    placeholders: list[Placeholder] = []
    pieces: list[str] = []  # literal pieces, the k-th placeholder as the k-th sentinel
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
    normalized = clean("".join(pieces))
    if not placeholders:  # literal text, whatever characters it holds
        if not normalized:
            raise BindingError(f"pattern {source!r} is empty after normalization")
        return Pattern(source, (normalized,))
    return _assemble(source, normalized, placeholders)


def _assemble(source: str, normalized: str, placeholders: list[Placeholder]) -> Pattern:
    """The normalized text split back into literal parts and placeholders."""
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
    return Pattern(source, tuple(parts))


def _placeholder(source: str, body: str, seen: list[Placeholder]) -> Placeholder:
    name, _, type_ = body.partition(":")
    name, type_ = name.strip(), type_.strip()
    if not _NAME.match(name) or keyword.iskeyword(name) or name == "ctx":
        raise BindingError(f"pattern {source!r}: {{{body}}} is not a valid placeholder name")
    if type_ not in TYPES:
        known = ", ".join(f"{{{name}:{t}}}" if t else f"{{{name}}}" for t in TYPES)
        raise BindingError(f"pattern {source!r}: unknown placeholder type {type_!r} ({known})")
    for other in seen:
        if other.name == name:
            raise BindingError(f"pattern {source!r}: placeholder {{{name}}} used twice")
    return Placeholder(name, type_)


def _regex_source(parts: tuple[str | Placeholder, ...]) -> str:
    """The regex, anchored by ``fullmatch``: one named group per placeholder."""
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
        out.append(f"(?P<{part.name}>{regex})")
    return "".join(out)


__all__ = ["TYPES", "Pattern", "Placeholder", "parse_pattern"]
