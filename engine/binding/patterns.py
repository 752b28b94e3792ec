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

The meaning of a pattern is its regex (``Pattern.regex``, ``_regex_source``): literals
compared with re.IGNORECASE, each placeholder's class with possessive quantifiers (every
class excludes white space, a token also the literal character after it), matched with
fullmatch. No catastrophic backtracking: a placeholder can end in one place, or in two
for the ``d``/``f`` alternation ("1,000" grouped, or the plain digits "1").

Matching compiles no regex per pattern (compiling costs ~100 us: thousands of handlers
would make loading an SOP slow). Instead each pattern gets a small *program*, built
without regex compilation, that decides exactly what its regex decides:

* ``Pattern.match`` / ``program``: the folded literals compared with ``str.startswith``
  and ``endswith``, and per placeholder a shared precompiled regex for its type, trying
  the ends the regex would try, in its order (``_walk``).
* ``Pattern.words_program``: for the registry, which has split a clean line into words
  and checked its word count and its pure-literal words (``Pattern.layout``): only the
  words holding placeholders are checked, each on its own (no placeholder takes a space).

Both apply when the pattern's literals are ASCII and the text folds the way IGNORECASE
compares (``folds_like_regex``: ASCII, or non-ASCII letters with no ASCII case partner);
otherwise the regex itself decides. Patterns of one form ("verify ... in {target}")
share one word program.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from engine.binding.normalize import SENTINEL_BASE, SENTINEL_MAX, clean
from engine.errors import BindingError

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

    __slots__ = (
        "_converters",
        "_key",
        "_layout",
        "_names",
        "_prefix",
        "_regex",
        "_run",
        "_witness",
        "literal",
        "parts",
        "source",
        "template",
    )

    def __init__(
        self,
        source: str,
        parts: tuple[str | Placeholder, ...],
        key: str | None,
        prefix: str | None,
        template: str | None = None,
    ) -> None:
        self.source = source
        self.parts = parts  # literal text (normalized, case kept) or placeholders
        if template is None:
            placeholders = iter(range(SENTINEL_BASE, SENTINEL_MAX + 1))
            template = "".join(
                [p if isinstance(p, str) else chr(next(placeholders)) for p in parts]
            )
        # the parts joined, the k-th placeholder written as the k-th sentinel character
        self.template = template
        self._key = key  # None: worked out when first asked for (see ``key``)
        self._prefix = prefix  # likewise (see ``prefix``)
        self.literal = len(parts) == 1 and isinstance(parts[0], str)
        self._regex: re.Pattern[str] | None = None
        self._witness: str | None = None
        self._converters: tuple[tuple[str, Any], ...] = ()
        self._layout: _Layout | None = None
        self._names: tuple[tuple[str, str], ...] | None = None  # (name, type) per placeholder
        self._run: _Run | None = None  # the program, built on first use (see _program)

    @property
    def prefix(self) -> str:
        """Up to PREFIX_WORDS complete leading literal words, folded ("" = none)."""
        prefix = self._prefix
        if prefix is None:
            prefix = self._prefix = _prefix(self.parts)
        return prefix

    @property
    def key(self) -> str:
        """Canonical form: case-folded, placeholders reduced to their type."""
        key = self._key
        if key is None:
            key = self._key = _key(self.parts)
        return key

    def __repr__(self) -> str:
        return f"Pattern({self.source!r})"

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    @property
    def regex(self) -> re.Pattern[str]:
        """The reference regex, compiled on first use: only for text that does not fold
        like it (see ``folds_like_regex``) or patterns with non-ASCII literals."""
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
        if folds_like_regex(text):
            return self.match_folded(text, text.lower())
        return self.match_regex(text)

    def matches(self, text: str) -> bool:
        return self.match(text) is not None

    def match_folded(self, text: str, folded: str) -> dict[str, Any] | None:
        """``match`` for text known to fold like the regex, with ``folded = text.lower()``."""
        return self.program()(text, folded)

    def program(self) -> Callable[[str, str], dict[str, Any] | None]:
        """``match_folded`` as a plain function (built on first use): for hot loops."""
        run = self._run
        if run is None:
            run = self._run = _program(self.parts)
        if run is _by_regex:
            return self._match_regex_folded
        return run

    def _match_regex_folded(self, text: str, folded: str) -> dict[str, Any] | None:
        return self.match_regex(text)

    def words_program(self) -> WordsRun | None:
        """``match`` for a ``clean``ed line that folds like the regex, given as its words
        and folded words, once the caller has checked that the line has this pattern's
        word count (``shape``) and its pure-literal words: it checks only the words
        holding placeholders. None when the literals are not ASCII (use ``match``).

        Exact: no placeholder matches white space and a clean line has single spaces,
        so each pattern word matches the line's word at its position, on its own.
        """
        count, _, _, wild = self.layout()
        if "\u212a" in self.template:  # the Kelvin sign: a non-ASCII literal folding to "k"
            return None
        names = self._names
        if names is None:
            names = tuple([(p.name, p.type) for p in self.parts if isinstance(p, Placeholder)])
        key = (count, wild, names)
        program: WordsRun | None = _WORDS_PROGRAMS.get(key, _UNKNOWN)
        if program is _UNKNOWN:
            program = _words_program(count, wild, names)
            if len(_WORDS_PROGRAMS) < _WORDS_PROGRAMS_MAX:
                _WORDS_PROGRAMS[key] = program
        return program

    def match_regex(self, text: str) -> dict[str, Any] | None:
        """The reference: the pattern's own regex (compiled on first use)."""
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
        count, positions, texts, _ = self.layout()
        return count, tuple(zip(positions, texts, strict=True))

    def layout(self) -> _Layout:
        """``shape`` for the registry's index, computed once: the word count, the
        positions and folded text of the pure-literal ASCII words, and the other words
        (position, text with sentinels: ``template``'s words)."""
        layout = self._layout
        if layout is None:
            layout = self._layout = _layout(self.template)
        return layout

    def covers(self, other: Pattern) -> bool:
        """True when this pattern matches the other's witness text: it is at least as general."""
        return self.matches(other.witness)

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


def parse_pattern(source: str) -> Pattern:
    """Parse and normalize ``source``; BindingError says what is wrong with it."""
    if not isinstance(source, str) or not source.strip():
        raise BindingError(f"empty handler pattern {source!r}")
    if "{" not in source and "}" not in source:  # literal: the common, fast case
        text = clean(source)
        if not text:
            raise BindingError(f"pattern {source!r} is empty after normalization")
        folded = text.lower()
        return Pattern(source, (text,), folded, folded, text)
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
    if len(placeholders) == 1:  # the common case, without the sentinel split
        head, sentinel, tail = normalized.partition(chr(SENTINEL_BASE))
        if sentinel and head.isascii() and tail.isascii():  # else the loop words the error
            one = placeholders[0]
            if head:
                found: tuple[str | Placeholder, ...] = (head, one, tail) if tail else (head, one)
            else:
                found = (one, tail) if tail else (one,)
            pattern = Pattern(source, found, None, None, normalized)
            # its layout, from the two ASCII sides (cheaper than Pattern.layout's own way)
            before = head.lower().split(" ")  # complete words, then the placeholder's part
            after = tail.lower().split(" ")  # the placeholder's part, then complete words
            position = len(before) - 1
            count = position + len(after)
            before[-1] += sentinel + after[0]
            literal = before[:-1] + after[1:]
            wild = ((position, before[-1]),)
            pattern._layout = (count, _all_but(count, position), tuple(literal), wild)
            pattern._names = ((one.name, one.type),)
            return pattern
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
    return Pattern(source, tuple(parts), None, None, normalized)


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


def _key(parts: Sequence[str | Placeholder]) -> str:
    return "".join([p.lower() if isinstance(p, str) else "{:" + p.type + "}" for p in parts])


def _prefix(parts: Sequence[str | Placeholder]) -> str:
    """Leading complete literal words of a patterned pattern, case-folded."""
    if len(parts) == 1 and isinstance(parts[0], str):
        return parts[0].lower()  # literal: the whole text
    head = parts[0]
    if not isinstance(head, str):
        return ""
    words = head.lower().split(" ")
    words.pop()  # the last piece runs into the placeholder (or is "" after a space)
    return " ".join(words[:PREFIX_WORDS])


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


# characters that never equal an ASCII letter under re.IGNORECASE though str.lower()
# keeps them apart, or that str.lower() does not map to one non-ASCII character
_UNFOLDABLE = frozenset("\u0130\u0131\u017f\u212a")


def folds_like_regex(text: str) -> bool:
    """True when comparing ``text.lower()`` with ASCII literals is what IGNORECASE does.

    ASCII text does. So do non-ASCII characters whose lower case is one non-ASCII
    character, except the four that IGNORECASE equates with an ASCII letter (dotted
    and dotless i, long s, Kelvin sign). Such text keeps its length when folded.
    """
    if text.isascii():
        return True
    for char in set(text):
        if char.isascii():
            continue
        lower = char.lower()
        if len(lower) != 1 or lower.isascii() or char in _UNFOLDABLE:
            return False
    return True


# -- line programs: Pattern.match without compiling its regex -----------------------------
# shared by every program: where a placeholder's possessive match may end
_RUN = re.compile(r"\S+")
_WORD = re.compile(r"\w+")
_INT_PLAIN = re.compile(r"[-+]?+\d++")
_INT_ANY = re.compile(r"[-+]?+(?:\d{1,3}(?:,\d{3})++|\d++)")
_INT_GROUPED = re.compile(r"[-+]?+\d{1,3}(?:,\d{3})++(?![\d,])")
_FLOAT_PLAIN = re.compile(r"[-+]?+(?:\d++(?:\.\d++)?+|\.\d++)")
_FLOAT_GROUPED = re.compile(r"[-+]?+\d{1,3}(?:,\d{3})++(?![\d,])(?:\.\d++)?+")
# (text, folded text, start, excluded folded character) -> the ends, in the regex's order
_Ends = Callable[[str, str, int, str], tuple[int, ...]]
# a pattern's program: (text, folded text) -> captures or None
_Run = Callable[[str, str], "dict[str, Any] | None"]


def _token_ends(text: str, folded: str, pos: int, excl: str) -> tuple[int, ...]:
    """``[^\\s{excl}]++``: the run of non-space characters, cut at the excluded one."""
    run = _RUN.match(text, pos)
    if run is None:
        return ()
    end = run.end()
    if excl:
        cut = folded.find(excl, pos, end)
        if cut != -1:
            return (cut,) if cut > pos else ()
    return (end,)


def _word_ends(text: str, folded: str, pos: int, excl: str) -> tuple[int, ...]:
    """``\\w++``."""
    run = _WORD.match(text, pos)
    return () if run is None else (run.end(),)


def _int_ends(text: str, folded: str, pos: int, excl: str) -> tuple[int, ...]:
    """``_INT``: its grouped branch ("1,000") first, then the plain digits ("1")."""
    plain = _INT_PLAIN.match(text, pos)
    if plain is None:
        return ()
    end = plain.end()
    if end < len(text) and text[end] == ",":  # only then can the grouped branch match
        grouped = _INT_GROUPED.match(text, pos)
        if grouped is not None:
            return (grouped.end(), end)
    return (end,)


def _float_ends(text: str, folded: str, pos: int, excl: str) -> tuple[int, ...]:
    """``_FLOAT``: grouped digits first, then plain digits, each with an optional fraction."""
    plain = _FLOAT_PLAIN.match(text, pos)
    if plain is None:
        return ()
    end = plain.end()
    if end < len(text) and text[end] == ",":  # a digit run right before a comma
        grouped = _FLOAT_GROUPED.match(text, pos)
        if grouped is not None:
            return (grouped.end(), end)
    return (end,)


_ENDS: dict[str, _Ends] = {"": _token_ends, "d": _int_ends, "f": _float_ends, "w": _word_ends}
# (where the placeholder may end, its excluded character, the folded literal after it)
_Step = tuple[_Ends, str, str]


def _walk(
    steps: tuple[_Step, ...], index: int, text: str, folded: str, pos: int, ends: list[int]
) -> bool:
    """Depth first through each placeholder's possible ends, as the regex backtracks."""
    ends_of, excl, literal = steps[index]
    last = index + 1 == len(steps)
    for end in ends_of(text, folded, pos, excl):
        if last:
            if end + len(literal) != len(folded) or not folded.endswith(literal):
                continue
        elif not folded.startswith(literal, end) or not _walk(
            steps, index + 1, text, folded, end + len(literal), ends
        ):
            continue
        ends[index] = end
        return True
    return False


def _by_regex(text: str, folded: str) -> dict[str, Any] | None:
    """Marks a pattern whose literals are not ASCII: its regex decides every match."""
    raise AssertionError("never called")  # pragma: no cover


def _program(parts: tuple[str | Placeholder, ...]) -> _Run:
    """The pattern as a closure over its folded literals and its placeholders' steps.

    Cheap to build (no regex): a literal and the placeholder's type per step.
    """
    if not all(p.isascii() for p in parts if isinstance(p, str)):
        return _by_regex  # str.lower() and IGNORECASE may disagree on the literals
    index = 0
    head = ""
    if isinstance(parts[0], str):
        head, index = parts[0].lower(), 1
    steps: list[_Step] = []
    names: list[tuple[str, Any]] = []
    while index < len(parts):  # placeholders and literals alternate after the head
        placeholder = parts[index]
        following = parts[index + 1] if index + 1 < len(parts) else ""
        assert isinstance(placeholder, Placeholder) and isinstance(following, str)
        first = following[:1]
        # a token excludes the literal character that follows it (see _regex_source)
        excl = first.lower() if placeholder.type == "" and first.strip() else ""
        steps.append((_ENDS[placeholder.type], excl, following.lower()))
        convert = _CONVERT[placeholder.type]
        names.append((placeholder.name, None if convert is str else convert))
        index += 2
    if not steps:
        return partial(_literal, head)
    if len(steps) == 1:
        return _one(head, steps[0], *names[0])
    return partial(_many, head, tuple(steps), tuple(names))


def _never(text: str, folded: str) -> dict[str, Any] | None:
    return None


def _literal(key: str, text: str, folded: str) -> dict[str, Any] | None:
    return {} if folded == key else None


def _one(head: str, step: _Step, name: str, convert: Any) -> _Run:
    """The common case, one placeholder: its span is fixed by the literals around it,
    so the text matches when that span's end is one of the placeholder's ends."""
    ends_of, excl, tail = step
    start = len(head)
    tail_size = len(tail)
    if ends_of is _token_ends:
        return _one_token(head, excl, tail, name)
    if ends_of is _int_ends:
        return _one_int(head, tail, name)

    def run(text: str, folded: str) -> dict[str, Any] | None:
        stop = len(folded) - tail_size
        if (
            stop <= start
            or not folded.startswith(head)
            or not folded.endswith(tail)
            or stop not in ends_of(text, folded, start, excl)
        ):
            return None
        if convert is None:
            return {name: text[start:stop]}
        return {name: convert(text[start:stop])}

    return run


def _one_token(head: str, excl: str, tail: str, name: str) -> _Run:
    """``head {name} tail``: the token's run ends at ``stop`` exactly when the span is
    not empty and holds neither white space nor the excluded character (the tail
    starts with that character, with a space, or is empty)."""
    start = len(head)
    tail_size = len(tail)
    fullmatch = _RUN.fullmatch

    def run(text: str, folded: str) -> dict[str, Any] | None:
        stop = len(folded) - tail_size
        if (
            stop <= start
            or not folded.startswith(head)
            or not folded.endswith(tail)
            or (excl and folded.find(excl, start, stop) >= 0)
            or fullmatch(text, start, stop) is None
        ):
            return None
        return {name: text[start:stop]}

    return run


def _one_int(head: str, tail: str, name: str) -> _Run:
    """``head {name:d} tail``: the span is one of _INT's two matches when it is an
    integer and the tail's first character does not extend either (a digit extends
    both; a comma extends the grouped one, which then must not be used)."""
    start = len(head)
    tail_size = len(tail)
    after = tail[:1]
    if after.isdecimal():
        return _never  # "{n:d}5": the digits always run on into the literal
    fullmatch = (_INT_PLAIN if after == "," else _INT_ANY).fullmatch

    def run(text: str, folded: str) -> dict[str, Any] | None:
        stop = len(folded) - tail_size
        if (
            stop <= start
            or not folded.startswith(head)
            or not folded.endswith(tail)
            or fullmatch(text, start, stop) is None
        ):
            return None
        return {name: int(text[start:stop].replace(",", ""))}

    return run


def _many(
    head: str,
    steps: tuple[_Step, ...],
    names: tuple[tuple[str, Any], ...],
    text: str,
    folded: str,
) -> dict[str, Any] | None:
    if not folded.startswith(head):
        return None
    ends = [0] * len(steps)
    if not _walk(steps, 0, text, folded, len(head), ends):
        return None
    pos = len(head)
    captures: dict[str, Any] = {}
    for (name, convert), (_, _, literal), end in zip(names, steps, ends, strict=True):
        captures[name] = text[pos:end] if convert is None else convert(text[pos:end])
        pos = end + len(literal)
    return captures


# -- word programs: for a line the registry has already split and partly checked ---------
# (cleaned line, folded line, folded words) -> captures or None
WordsRun = Callable[[str, str, list[str]], "dict[str, Any] | None"]
_FULL = {"d": re.compile(_INT), "f": re.compile(_FLOAT), "w": re.compile(r"\w++")}
_WordPart = tuple[str | Placeholder, ...]
# (word count, the words holding placeholders, the placeholders) -> their program: a pure
# function's memo, bounded; patterns of one form ("verify ... in {target}") share one
_WORDS_PROGRAMS: dict[Any, WordsRun | None] = {}
_WORDS_PROGRAMS_MAX = 4096
_UNKNOWN: Any = object()
# word count, positions and folded text of the pure-literal ASCII words, the other words
_Layout = tuple[int, tuple[int, ...], tuple[str, ...], tuple[tuple[int, str], ...]]


def _layout(template: str) -> _Layout:
    """``Pattern.layout``: a word that is not ASCII holds a placeholder's sentinel (or
    a non-ASCII letter) and is not pure literal."""
    words = template.lower().split(" ")  # folding keeps the words: no letter folds to " "
    if "\u212a" in template:  # the Kelvin sign is the one letter that folds to ASCII
        kept = template.split(" ")
        wild = tuple([(i, word) for i, word in enumerate(words) if not kept[i].isascii()])
    else:
        wild = tuple([(i, word) for i, word in enumerate(words) if not word.isascii()])
    count = len(words)
    if len(wild) == 1:  # the common case, without a loop in Python
        position = wild[0][0]
        del words[position]
        return count, _all_but(count, position), tuple(words), wild
    skip = {index for index, _ in wild}
    literal = [(index, word) for index, word in enumerate(words) if index not in skip]
    return (
        count,
        tuple([index for index, _ in literal]),
        tuple([word for _, word in literal]),
        wild,
    )


# (word count, position) -> every other position: a pure function's memo (small: the
# positions are bounded by the words of a line)
_ALL_BUT: dict[tuple[int, int], tuple[int, ...]] = {}


def _all_but(count: int, position: int) -> tuple[int, ...]:
    positions = _ALL_BUT.get((count, position))
    if positions is None:
        positions = tuple(index for index in range(count) if index != position)
        if len(_ALL_BUT) < 4096:
            _ALL_BUT[(count, position)] = positions
    return positions


def _cased(cleaned: str, words: list[str], position: int) -> str:
    """The line's word at ``position`` in its own case: folding keeps every length."""
    if position == 0:
        return cleaned[: len(words[0])]
    start = position + sum(map(len, words[:position]))
    return cleaned[start : start + len(words[position])]


def _words_program(
    count: int, wild: tuple[tuple[int, str], ...], names: tuple[tuple[str, str], ...]
) -> WordsRun | None:
    """The program of the words holding placeholders (sentinels stand for ``names``);
    None when one of them has a non-ASCII literal character."""
    programs: list[WordsRun] = []
    for position, word in wild:
        if word.isascii():
            return None  # no placeholder: a word of non-ASCII letters (folded to ASCII)
        parts: list[str | Placeholder] = []
        for index, piece in enumerate(_SENTINEL_SPLIT.split(word)):
            if index % 2:
                parts.append(Placeholder(*names[ord(piece) - SENTINEL_BASE]))
            elif piece:
                if not piece.isascii():
                    return None  # str.lower() and IGNORECASE may disagree
                parts.append(piece)
        programs.append(_word_program(position, position == count - 1, tuple(parts)))
    if len(programs) == 1:
        return programs[0]
    runs = tuple(programs)

    def several(cleaned: str, folded: str, words: list[str]) -> dict[str, Any] | None:
        captures: dict[str, Any] = {}
        for run in runs:
            found = run(cleaned, folded, words)
            if found is None:
                return None
            captures.update(found)
        return captures

    return several


def _word_program(position: int, last: bool, parts: _WordPart) -> WordsRun:
    """One word holding placeholders: a literal head and one placeholder ending the word
    (the common case), else the word's own program as for a line."""
    if len(parts) == 1:
        head, placeholder = "", parts[0]
    elif len(parts) == 2 and isinstance(parts[0], str):
        head, placeholder = parts[0].lower(), parts[1]
    else:
        inner = _program(parts)

        def within(cleaned: str, folded: str, words: list[str]) -> dict[str, Any] | None:
            return inner(_cased(cleaned, words, position), words[position])

        return within
    assert isinstance(placeholder, Placeholder)
    if placeholder.type == "":
        return _word_token(position, last, head, placeholder.name)
    return _word_typed(position, head, placeholder)


def _word_token(position: int, last: bool, head: str, name: str) -> WordsRun:
    """``head{name}`` as a whole word: what follows is a space or the end, so the
    token takes the rest of the word (it excludes no character there)."""
    size = len(head)

    def token(cleaned: str, folded: str, words: list[str]) -> dict[str, Any] | None:
        word = words[position]
        if len(word) <= size or (size and not word.startswith(head)):
            return None
        if last:
            return {name: cleaned[len(cleaned) - len(word) + size :]}
        return {name: _cased(cleaned, words, position)[size:]}

    return token


def _word_typed(position: int, head: str, placeholder: Placeholder) -> WordsRun:
    """``head{name:type}`` as a whole word. What follows the placeholder is a space or
    the end, which no type can take, so it matches exactly when its type's regex
    matches all the rest of the word: neither a possessive part nor the grouped/plain
    alternation can end anywhere else. Numbers have no case: read from the folded word."""
    name = placeholder.name
    size = len(head)
    fullmatch = _FULL[placeholder.type].fullmatch
    convert = _CONVERT[placeholder.type]
    integer = placeholder.type == "d"
    cased = placeholder.type == "w"

    def typed(cleaned: str, folded: str, words: list[str]) -> dict[str, Any] | None:
        word = words[position]
        if size and not word.startswith(head):
            return None
        value = word[size:] if size else word
        if integer and value.isdecimal():  # what \d matches: the plain branch, no commas
            return {name: int(value)}
        if fullmatch(value) is None:
            return None
        if cased:
            value = _cased(cleaned, words, position)[size:]
        return {name: convert(value)}

    return typed


__all__ = [
    "PREFIX_WORDS",
    "TYPES",
    "Pattern",
    "Placeholder",
    "WordsRun",
    "folds_like_regex",
    "parse_pattern",
]
