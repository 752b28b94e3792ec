"""SOP markdown -> :class:`engine.model.Sop`, every element with its 1-based source line.

One mistune block pass builds the token tree (inline parsing runs only on the texts
the model keeps). mistune records no positions, so a cursor walks the source lines
in step with the tokens (document order) and stamps each token with its line: linear
in the file, no re-parsing, no backtracking regular expressions.

``parse`` never raises on bad input: what is wrong becomes a ``Diagnostic`` whose
message says how to fix it. Codes (stable; lint owns SOP1xx):

=======  ========  ==========================================================
SOP001   error     NUL bytes: binary, not markdown (nothing else is read)
SOP002   error     not valid UTF-8 (read with replacement characters)
SOP003   error     over MAX_BYTES (nothing else is read)
SOP004   error     empty file
SOP005   warning   no ``# Title`` (front matter ``title`` is used when given)
SOP006   error     front matter is not a YAML mapping
SOP007   warning   a second H1
SOP008   warning   a known section appears twice
SOP009   warning   a metadata key given twice
SOP010   error     no ``## Steps`` section, or no steps in it
SOP011   warning   keyword list items under Steps before the first step
SOP012   error     a step heading without a number
SOP013   error     steps not numbered 1..N in order
SOP014   warning   a step with no actions and no checks
SOP015   error     markdown nested too deeply to read
SOP016   error     a line over MAX_LINE characters (nothing else is read)
SOP020   warning   an Actions / Constraints / Security item without an RFC 2119 keyword
SOP021   warning   a lower-case "must" / "should" / "may" leading an item
SOP022   warning   an Error Handling item neither "If <condition>: <response>" nor keyword
SOP023   warning   a ``**For X**:`` branch that matches no parameter's enum value
SOP030   warning   a Parameters item not ``- **name** (type): description``
SOP031   error     a parameter declared twice
SOP032   warning   a parameter detail not ``Key: value``
SOP040   warning   Error Recovery without a table
SOP041   warning   an Error Recovery row without error type or procedure
SOP050   error     an example's Input / Expected Output block is not valid YAML
SOP051   error     an example's Input / Expected Output is not a mapping
SOP052   error     a YAML alias (``*name``) in an example or the front matter
SOP099   error     internal parser error (a bug; the fuzz tests assert it never happens)
=======  ========  ==========================================================
"""

from __future__ import annotations

import codecs
import os
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import mistune
import yaml
from mistune.block_parser import BlockParser
from mistune.core import BlockState
from mistune.inline_parser import InlineParser
from mistune.plugins import import_plugin

from engine.language.recovery import interpret
from engine.model import (
    KEYWORDS,
    Action,
    ActionKind,
    Branch,
    CodeBlock,
    Diagnostic,
    ErrorRule,
    Example,
    Level,
    Link,
    ParamAttribute,
    Parameter,
    RecoveryRule,
    Section,
    Severity,
    Sop,
    Step,
)

try:  # the built-in module: hashlib would load OpenSSL, ~5 ms of every CLI start
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256

__all__ = ["KNOWN_SECTIONS", "MAX_BYTES", "MAX_LINE", "parse", "yaml_alias_line"]

#: Larger files are refused with SOP003 (the seed is 6 KB): a procedure this big
#: should be split, and a long-lived server must not stall on one.
MAX_BYTES = 500_000
#: Longer lines are refused with SOP016 (the longest shipped line is under 1,000):
#: mistune reads a link target without white space in time quadratic in its length,
#: so a file of such lines costs (file size x line length): 4,000 keeps 500 KB near 2 s.
MAX_LINE = 4_000

Token = dict[str, Any]

_ERROR, _WARNING, _INFO = Severity.ERROR, Severity.WARNING, Severity.INFO
_SINGLE_KEYWORDS = frozenset(
    {"MUST", "SHALL", "SHOULD", "MAY", "REQUIRED", "RECOMMENDED", "OPTIONAL"}
)
_LOWER_MODALS = frozenset({"must", "should", "may", "shall"})
_PUNCT = ",.;:!?)("
#: H2 titles the parser reads (lower case, single spaces) -> their role.
KNOWN_SECTIONS = {
    "overview": "overview",
    "prerequisites": "prerequisites",
    "parameters": "parameters",
    "steps": "steps",
    "success criteria": "success_criteria",
    "error recovery": "error_recovery",
    "security considerations": "security",
    "security": "security",
    "examples": "examples",
    "related sops": "related",
    "related": "related",
    "version history": "version_history",
}
_ENUM_KEYS = frozenset({"values", "value", "allowed values", "enum", "options", "one of"})
_BLOCK_LABELS = {
    "purpose": "purpose",
    "actions": "actions",
    "action": "actions",
    "constraints": "constraints",
    "constraint": "constraints",
    "validation": "validation",
    "validations": "validation",
    "checks": "validation",
    "error handling": "error_handling",
}


@cache
def _markdown() -> mistune.Markdown:
    """One parser for the process: the same as ``create_markdown(renderer="ast",
    plugins=["table"])`` but with :class:`_SopBlockParser`'s fast path for plain lists."""
    inline = InlineParser()
    block = _SopBlockParser(max_nested_level=inline.max_nested_level)
    return mistune.Markdown(
        renderer=None, block=block, inline=inline, plugins=[import_plugin("table")]
    )


# mistune's list parser compiles patterns and re-parses every item's text as a child
# document: most of a whole parse for a typical SOP, whose lists are all "- text" items
# with at most one level of "  - text" details. Such a list has one possible token tree,
# built here directly; anything else (other markers, wider indents, continuation or lazy
# lines, blank lines inside an item, text that could open a block) goes to mistune.
# ``bench/bench_parse.py`` checks the two agree token for token.
_UNSAFE_ITEM = re.compile(
    r"[^A-Za-z0-9*`\[(\"']"  # a first character that might open a block
    r"|\d{1,9}[.)]"  # an ordered list marker
    r"|\*(?:\s|$|\*(?:[\s*]|$))"  # a bullet, a thematic break, a bare "**"
    r"|```"  # a code fence
    r"|\[[^\]]*\]:"  # a link reference definition
    r"|.*(?:[\t\r\v\f]|\s$)"  # tabs, odd breaks, trailing white space
    r"|$"  # no text at all
)
#: first characters of a line that no block a list item ends at can start with
_PLAIN_START = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz|([\"'!")
_NOT_BOLD = ("", " ", "\t", "*")  # after "**": a bullet or a thematic break may follow


#: blocks that end a list when they start a line right after it; mistune parses them
#: inside the list and puts the list before them (which matters in a lazy block quote)
_LIST_ENDERS = frozenset({"atx_heading", "thematic_break", "fenced_code", "block_quote"})


class _SopBlockParser(BlockParser):
    """mistune's block parser with a fast path for the plain lists SOPs are made of."""

    _list_break: re.Pattern[str] | None = None
    _atx: re.Pattern[str] | None = None

    def parse_list(self, m: re.Match[str], state: BlockState) -> int:
        end = _plain_list(self, m, state)
        return end if end is not None else super().parse_list(m, state)

    def _parse_plain_paragraph(self, state: BlockState, sc: re.Pattern[str]) -> bool:
        """Also a paragraph opening with bold (``**Purpose**: ...``), which mistune finds
        by searching ahead with its whole block pattern from every character.

        Called only when no block starts at the cursor; all block rules match at line
        starts, so the paragraph runs to the first line one matches at (a blank line is
        one), just as the search would find. An indented stop line goes back to
        mistune, whose indented-code check differs between the two paths.
        """
        if super()._parse_plain_paragraph(state, sc):
            return True
        src, start, stop = state.src, state.cursor, state.cursor_max
        if src[start : start + 2] != "**" or not src[start + 2 : start + 3].isalnum():
            return False
        pos = state.find_line_end_at(start)
        while pos < stop and sc.match(src, pos) is None:
            pos = state.find_line_end_at(pos)
        if pos < stop and src[pos] in " \t":
            return False
        state.add_paragraph(src[start:pos])
        state.cursor = pos
        return True

    def atx_heading(self) -> re.Pattern[str]:
        """mistune's ATX heading rule alone (lines starting with ``#``)."""
        if self._atx is None:
            spec = self.specification["atx_heading"]
            self._atx = re.compile(f"(?P<atx_heading>{spec})", self.sc_flag)
        return self._atx

    def list_break(self) -> re.Pattern[str] | None:
        """mistune's pattern for lines that end a ``- `` item (None: no fast path)."""
        if self._list_break is None:
            from mistune import list_parser

            compile_break = getattr(list_parser, "_compile_list_break_sc", None)
            if compile_break is None:
                return None
            self._list_break = compile_break(self, 1)
        return self._list_break


def _plain_list(block: _SopBlockParser, m: re.Match[str], state: BlockState) -> int | None:
    """Tokenize a list of ``- text`` items (each with optional ``  - text`` details).

    Returns the end offset, or None (nothing changed) when the list is anything else.
    In the document's own state (not an item's or a quote's) the tokens also get their
    source lines, so ``_stamp`` need not walk them.
    """
    if m.group("list_1") or m.group("list_2") != "-" or state.lazy_line_starts:
        return None
    depth = state.depth()
    if depth + 3 >= block.max_nested_level:
        return None
    src, begin, stop = state.src, state.cursor, state.cursor_max
    pos = begin
    row = src.count("\n", 0, begin) + 1 if state.parent is None else 0  # 1-based; 0: unknown
    items: list[_Item] = []
    loose = blank = False
    ender: re.Match[str] | None = None
    unsafe = _UNSAFE_ITEM.match
    while pos < stop:
        newline = src.find("\n", pos, stop)
        after = stop if newline < 0 else newline + 1
        line = src[pos : stop if newline < 0 else newline]
        if not line:
            blank = True
        elif line[:2] == "- ":
            if unsafe(line, 2):
                return None
            loose = loose or (blank and bool(items))
            items.append((line[2:], row, []))
            blank = False
        elif line[:4] == "  - " and items and not blank:
            if unsafe(line, 4):
                return None
            items[-1][2].append((line[4:], row))
        elif line[0].isspace() or line[0] == "-":
            return None  # continuation, white space mistune calls blank, another item
        elif line[0] in _PLAIN_START or (line[:2] == "**" and line[2:3] not in _NOT_BOLD):
            if not blank:  # no block starts so: a paragraph after a blank, else lazy
                return None
            break
        else:
            if line[0] == "#":
                found = block.atx_heading().match(src, pos)
            else:
                breaks = block.list_break()
                if breaks is None:
                    return None
                found = breaks.match(src, pos)
            if found is not None and found.lastgroup in _LIST_ENDERS:
                ender = found
            elif not blank and (found is None or found.lastgroup != "list"):
                return None  # a lazy continuation line
            break
        pos = after
        if row:
            row += 1
    if not items:
        return None
    token = _list_token(items, loose, depth, bool(row))
    if ender is not None:
        index = len(state.tokens)
        state.cursor = pos
        end = block.parse_method(ender, state)
        if end:
            state.tokens.insert(index, token)
            return end
        if not blank:  # a fence that declined (backticks in its info): a lazy line
            state.cursor = begin
            return None
    state.append_token(token)
    state.cursor = pos
    return pos


#: an item's text and line (0: not known) with its details' texts and lines
_Item = tuple[str, int, list[tuple[str, int]]]


def _list_token(items: list[_Item], loose: bool, depth: int, lines: bool) -> Token:
    """The tokens mistune makes of such a list; with ``lines``, stamped as ``_stamp`` would."""
    kind = "paragraph" if loose else "block_text"
    children = []
    for text, row, details in items:
        first: Token = {"type": kind, "text": text + "\n"}
        item: Token = {"type": "list_item", "children": [first]}
        if details:
            sub: list[Token] = []
            for detail, sub_row in details:
                para: Token = {"type": "block_text", "text": detail + "\n"}
                entry: Token = {"type": "list_item", "children": [para]}
                if lines:
                    para["_line"] = entry["_line"] = sub_row
                sub.append(entry)
            nested: Token = {
                "type": "list",
                "children": sub,
                "tight": True,
                "bullet": "-",
                "attrs": {"depth": depth + 1, "ordered": False},
            }
            if lines:
                nested["_line"] = details[0][1]
            item["children"].append(nested)
        if lines:
            first["_line"] = item["_line"] = row
        children.append(item)
    token: Token = {
        "type": "list",
        "children": children,
        "tight": not loose,
        "bullet": "-",
        "attrs": {"depth": depth, "ordered": False},
    }
    if lines:
        last = items[-1]
        token["_line"] = items[0][1]
        token["_last"] = last[2][-1][1] if last[2] else last[1]  # 1-based, the list's end
    return token


# ----------------------------------------------------------------------------- lines


def _content(line: str) -> str:
    """A line without its indentation and block-quote markers."""
    return line.lstrip(" \t>")


def _nonblank(line: str) -> bool:
    return bool(line.strip(" \t>"))


def _is_heading(line: str) -> bool:
    return _content(line).startswith("#")


def _is_fence(line: str) -> bool:
    c = _content(line)
    return c.startswith("```") or c.startswith("~~~")


def _is_list_marker(line: str) -> bool:
    c = _content(line)
    if not c:
        return False
    if c[0] in "-*+":
        return len(c) == 1 or c[1] in " \t"
    i = 0
    while i < len(c) and i < 10 and c[i].isdigit():
        i += 1
    return 0 < i < len(c) and c[i] in ".)"


def _has_pipe(line: str) -> bool:
    return "|" in line


class _Cursor:
    """Walks the source lines in step with mistune's tokens (both in document order)."""

    _WINDOW = 64

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.n = len(lines)
        self.i = 0
        self.blank = [not line.strip(" \t>") for line in lines]

    def seek(self, pred: Callable[[str], bool] | None = None) -> int:
        """Index of the next line a token of this shape can start on (0-based).

        ``pred`` None: any non-blank line. A shape not found within a small window
        falls back to the next non-blank line, so a surprise costs O(1), not O(n).
        """
        blank, n, j = self.blank, self.n, self.i
        while j < n and blank[j]:
            j += 1
        if pred is None or j >= n:
            return min(j, n - 1) if n else 0
        first, lines = j, self.lines
        limit = min(n, j + self._WINDOW)
        while j < limit:
            if pred(lines[j]):
                return j
            j += 1
        return first


def _line_count(text: str) -> int:
    return text.rstrip("\n").count("\n") + 1


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _marker_only(line: str) -> bool:
    """A list item whose marker line holds nothing else (its content starts below)."""
    c = _content(line)
    i = 1 if c[:1] in ("-", "*", "+") else len(c) - len(c.lstrip("0123456789")) + 1
    return not c[i:].strip()


def _stamp(tokens: list[Token], cur: _Cursor, depth: int = 0) -> None:
    """Give every block token a ``_line`` (1-based), in document order.

    mistune emits a block quote whose lazy paragraph a list interrupted *after* that
    list; at the top level the quote's ``>`` line tells the two apart.
    """
    i, count = 0, len(tokens)
    while i < count:
        tok = tokens[i]
        if (
            depth == 0
            and i + 1 < count
            and tokens[i + 1]["type"] == "block_quote"
            and tok["type"] not in ("block_quote", "blank_line")
            and cur.lines[cur.seek()].lstrip(" ").startswith(">")
        ):
            _stamp_one(tokens[i + 1], cur, depth)
            _stamp_one(tok, cur, depth)
            i += 2
            continue
        _stamp_one(tok, cur, depth)
        i += 1


def _stamp_one(tok: Token, cur: _Cursor, depth: int) -> None:
    """Stamp one token (and its children) and move the cursor past it."""
    kind = tok["type"]
    if kind == "blank_line":
        tok["_line"] = min(cur.i, cur.n - 1) + 1 if cur.n else 1
        return
    if kind == "list":
        if "_last" in tok:  # stamped by _plain_list, which knew the lines
            cur.i = max(cur.i, tok["_last"])
            return
        first = -1
        for item in tok.get("children", ()):
            start = cur.seek(_is_list_marker)
            item["_line"] = start + 1
            if first < 0:
                first = start
            cur.i = start + 1 if _marker_only(cur.lines[start]) else start
            _stamp(item.get("children", []), cur, depth + 1)
            cur.i = max(cur.i, start + 1)
        tok["_line"] = (first if first >= 0 else cur.seek()) + 1
    elif kind == "block_quote":
        start = cur.seek()
        tok["_line"] = start + 1
        cur.i = start
        _stamp(tok.get("children", []), cur, depth + 1)
        cur.i = max(cur.i, start + 1)
    elif kind == "table":
        start = cur.seek(_has_pipe)
        tok["_line"] = start + 1
        rows = 0
        for part in tok.get("children", ()):
            if part.get("type") == "table_body":
                for k, row in enumerate(part.get("children", ())):
                    row["_line"] = start + 3 + k
                    rows += 1
        cur.i = start + 2 + rows
    else:
        if kind == "heading":
            setext = tok.get("style") == "setext"
            pred = None if setext else _is_heading
            size = _line_count(tok.get("text", "")) + 1 if setext else 1
        elif kind == "block_code":
            raw = tok.get("raw", "")
            inner = raw.count("\n") + (0 if raw.endswith("\n") or not raw else 1)
            if tok.get("style") == "fenced":
                start = cur.seek(_is_fence)
                tok["_line"] = start + 1
                close = start + 1 + inner
                closed = close < cur.n and _is_fence(cur.lines[close])
                if closed and depth:  # inside a list item: a less indented fence is not ours
                    closed = _indent(cur.lines[close]) >= _indent(cur.lines[start])
                cur.i = close + (1 if closed else 0)
                return
            pred, size = None, max(1, inner)
        elif kind in ("paragraph", "block_text"):
            pred, size = None, _line_count(tok.get("text", ""))
        elif kind == "block_html":
            pred, size = None, _line_count(tok.get("raw", ""))
        else:
            pred, size = None, 1
        start = cur.seek(pred)
        tok["_line"] = start + 1
        cur.i = start + size


# ----------------------------------------------------------------------------- text

_INLINE_MARKS = frozenset("*_`[]<>!\\&~")


def _plain(md: mistune.Markdown, raw: str, env: MutableMapping[str, Any]) -> str:
    out: list[str] = []
    _flatten(md.inline(raw, env), out)
    return " ".join("".join(out).split())


def _links(md: mistune.Markdown, raw: str, env: MutableMapping[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    _collect_links(md.inline(raw, env), out)
    return out


# Inline parsing is a pure function of the text when the file defines no reference
# links; SOPs repeat their labels and phrases (``**Purpose**:``, `usd`, ...) across files.
@lru_cache(maxsize=4096)
def _plain_cached(raw: str) -> str:
    return _plain(_markdown(), raw, {"ref_links": {}})


@lru_cache(maxsize=1024)
def _links_cached(raw: str) -> tuple[tuple[str, str], ...]:
    return tuple(_links(_markdown(), raw, {"ref_links": {}}))


def clear_caches() -> None:
    """Forget memoized inline results (benchmarks measuring a cold parse call this)."""
    _plain_cached.cache_clear()
    _links_cached.cache_clear()


def _flatten(tokens: list[Token], out: list[str]) -> None:
    for tok in tokens:
        kind = tok.get("type")
        if kind in ("softbreak", "linebreak"):
            out.append(" ")
        elif "children" in tok:
            _flatten(tok["children"], out)
        elif "raw" in tok:
            out.append(tok["raw"])
        elif "text" in tok:
            out.append(tok["text"])


def _collect_links(tokens: list[Token], out: list[tuple[str, str]]) -> None:
    for tok in tokens:
        if tok.get("type") == "link":
            parts: list[str] = []
            _flatten(tok.get("children", []), parts)
            out.append((" ".join("".join(parts).split()), str(tok.get("attrs", {}).get("url", ""))))
        elif "children" in tok:
            _collect_links(tok["children"], out)


def _bold_label(text: str) -> tuple[str, str] | None:
    """``**Key**: rest`` or ``**Key:** rest`` -> (Key, rest); None when not a label."""
    if not (text.startswith("**") or text.startswith("__")):
        return None
    mark = text[:2]
    end = text.find(mark, 2)
    if end < 0:
        return None
    label = text[2:end].strip()
    rest = text[end + 2 :]
    if label.endswith(":"):
        label = label[:-1].rstrip()
    elif rest.startswith(":"):
        rest = rest[1:]
    else:
        return None
    if not label or "\n" in label:
        return None
    return label, rest.strip()


def _quoted(text: str) -> str | None:
    """The first double-quoted string (straight or curly quotes)."""
    for left, right in (('"', '"'), ("\u201c", "\u201d")):
        start = text.find(left)
        if start >= 0:
            end = text.find(right, start + 1)
            if end > start + 1:
                return text[start + 1 : end]
    return None


def _strip_ticks(text: str) -> str:
    return text.strip().strip("`").strip()


def _enum_values(value: str) -> list[str]:
    """``Values: `a` | `b` `` -> ["a", "b"] (also comma separated)."""
    sep = "|" if "|" in value else ","
    return [v for v in (_strip_ticks(p).strip("\"'") for p in value.split(sep)) if v]


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("ses") or word.endswith("xes") or word.endswith("ches"):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@dataclass
class _Keyword:
    level: Level
    keyword: str
    text: str  # the item's plain text without keyword (and a "You" before it)


def _find_keyword(plain: str) -> _Keyword | None:
    """The first upper-case RFC 2119 keyword, anywhere in the sentence (RFC 8174)."""
    words = plain.split()
    for i, word in enumerate(words):
        if not word[:1].isupper() and word[:1] != "(":
            continue  # fast path: keywords are upper case
        core = word.strip(_PUNCT)
        if core not in _SINGLE_KEYWORDS and core != "NOT":
            continue
        nxt = words[i + 1].strip(_PUNCT) if i + 1 < len(words) else ""
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
        return _Keyword(KEYWORDS[written], written, text)
    return None


# ----------------------------------------------------------------------------- builders


@dataclass
class _StepB:
    number: int
    title: str
    line: int
    purpose: list[str] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    checks: list[Action] = field(default_factory=list)
    rules: list[ErrorRule] = field(default_factory=list)
    branches: list[dict[str, Any]] = field(default_factory=list)
    text: list[str] = field(default_factory=list)


@dataclass
class _ExampleB:
    title: str
    line: int
    number: int | None
    raw: str = ""
    code_line: int = 0


class _Parser:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self.diags: list[Diagnostic] = []
        self.md = _markdown()
        self.env: MutableMapping[str, Any] = {"ref_links": {}}
        self.n_lines = 1

    # ---- helpers

    def diag(self, code: str, severity: Severity, line: int, message: str) -> None:
        line = min(max(1, line), self.n_lines)
        self.diags.append(Diagnostic(code, severity, message, line, 1, self.path))

    def plain(self, raw: str) -> str:
        """Inline markdown -> plain text (code spans keep their content)."""
        raw = raw.strip()
        if not raw:
            return ""
        if _INLINE_MARKS.isdisjoint(raw):
            return " ".join(raw.split())
        if self.env.get("ref_links"):  # reference links: the answer depends on this file
            return _plain(self.md, raw, self.env)
        return _plain_cached(raw)

    def links(self, raw: str) -> list[tuple[str, str]]:
        raw = raw.strip()
        if self.env.get("ref_links"):
            return _links(self.md, raw, self.env)
        return list(_links_cached(raw))

    # ---- entry

    def _unread(self, name: str | None, text: str, digest: str) -> Sop:
        """The model of a file refused before its markdown is read: diagnostics only."""
        return Sop(
            name=name or "untitled",
            title="",
            path=self.path,
            text=text,
            content_hash=digest,
            diagnostics=tuple(self.diags),
        )

    def run(self, data: str | bytes) -> Sop:
        raw_bytes, text = self.decode(data)
        digest = sha256(raw_bytes).hexdigest()
        name = _name_from_path(self.path)
        if text is None:
            return self._unread(name, "", digest)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        self.n_lines = max(1, len(lines))
        if not text.strip():
            self.diag(
                "SOP004",
                _ERROR,
                1,
                "file is empty: start with '# Title', then '## Steps' with '### 1. Title' steps",
            )
            return self._unread(name, text, digest)

        if len(text) > MAX_LINE:  # a shorter file has no line that long
            long = next((i for i, line in enumerate(lines) if len(line) > MAX_LINE), None)
            if long is not None:
                self.diag(
                    "SOP016",
                    _ERROR,
                    long + 1,
                    f"line is {len(lines[long]):,} characters long, over the {MAX_LINE:,}-"
                    "character limit for one SOP line: break it up",
                )
                return self._unread(name, text, digest)

        metadata: dict[str, str] = {}
        metadata_lines: dict[str, int] = {}
        md_text = self.front_matter(lines, text, metadata, metadata_lines)
        state = BlockState()
        state.process(md_text if md_text.endswith("\n") else md_text + "\n")
        self.md.block.parse(state)
        self.env = state.env
        # the cursor walks what mistune saw: front matter lines blanked, same line count
        _stamp(
            state.tokens,
            _Cursor(md_text.split("\n")[: len(lines)] if md_text is not text else lines),
        )
        return self.build(state.tokens, lines, text, digest, name, metadata, metadata_lines)

    def decode(self, data: str | bytes) -> tuple[bytes, str | None]:
        if isinstance(data, str):
            raw = data.encode("utf-8", "surrogatepass")
            if "\x00" in data:
                line = data.count("\n", 0, data.index("\x00")) + 1
                self.n_lines = max(1, data.count("\n") + 1)
                self.diag(
                    "SOP001",
                    _ERROR,
                    line,
                    "file contains NUL bytes (binary, not markdown): an SOP must be UTF-8 text",
                )
                return raw, None
            text = data[1:] if data.startswith("\ufeff") else data
        else:
            raw = bytes(data)
            self.n_lines = max(1, raw.count(b"\n") + 1)
            if b"\x00" in raw:
                line = raw.count(b"\n", 0, raw.index(b"\x00")) + 1
                self.diag(
                    "SOP001",
                    _ERROR,
                    line,
                    "file contains NUL bytes (binary, not markdown): an SOP must be UTF-8 text",
                )
                return raw, None
            body = raw[3:] if raw.startswith(codecs.BOM_UTF8) else raw
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError as exc:
                line = body.count(b"\n", 0, exc.start) + 1
                self.diag(
                    "SOP002",
                    _ERROR,
                    line,
                    f"not valid UTF-8 (byte 0x{body[exc.start]:02x} at "
                    f"offset {exc.start}): save the file as UTF-8",
                )
                text = body.decode("utf-8", "replace")
        if len(raw) > MAX_BYTES:
            self.n_lines = max(1, text.count("\n") + 1)
            self.diag(
                "SOP003",
                _ERROR,
                1,
                f"file is {len(raw):,} bytes, over the {MAX_BYTES:,}-byte "
                "limit for one SOP: split the procedure and link the parts under Related SOPs",
            )
            return raw, None
        return raw, text

    def front_matter(
        self, lines: list[str], text: str, meta: dict[str, str], meta_lines: dict[str, int]
    ) -> str:
        """YAML front matter -> metadata; its lines are blanked so line numbers stay true."""
        if not lines or lines[0].strip() != "---":
            return text
        end = -1
        for i in range(1, len(lines)):
            if lines[i].strip() in ("---", "..."):
                end = i
                break
        if end < 0:
            return text
        first = next((ln for ln in lines[1:end] if ln.strip()), "")
        key, colon, _ = first.partition(":")
        if not colon or not key or not all(c.isalnum() or c in "_- " for c in key):
            return text  # a thematic break, not front matter ("key: value" lines)
        block = "\n".join(lines[1:end])
        try:
            alias = yaml_alias_line(block)
            if alias is not None:
                self.diag("SOP052", _ERROR, 2 + alias, _ALIAS_MESSAGE.format(where="front matter"))
                return text
            data = yaml.load(block, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = 2 + (mark.line if mark is not None else 0)
            first = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
            self.diag(
                "SOP006",
                _ERROR,
                line,
                f"front matter is not valid YAML ({first}): "
                "write 'key: value' lines between the '---' lines",
            )
            data = None
        except Exception as exc:  # yaml may raise non-YAMLError on hostile input
            self.diag(
                "SOP006",
                _ERROR,
                2,
                f"front matter could not be read ({type(exc).__name__}): "
                "write 'key: value' lines between the '---' lines",
            )
            data = None
        if not isinstance(data, dict):
            if data is not None:
                self.diag(
                    "SOP006", _ERROR, 2, "front matter must be a mapping of 'key: value' lines"
                )
            # not metadata after all (a thematic break?): the markdown is read as written
            return text
        if data:
            for key, value in data.items():
                k = str(key)
                meta[k] = "" if value is None else str(value)
                meta_lines[k] = 1
            for i in range(1, end):
                head = lines[i].split(":", 1)[0].strip()
                if head in meta and lines[i][:1] not in (" ", "\t"):
                    meta_lines[head] = i + 1
        blank = "\n" * (end + 1)
        rest = "\n".join(lines[end + 1 :])
        return blank + rest

    # ---- the document

    def build(
        self,
        tokens: list[Token],
        lines: list[str],
        text: str,
        digest: str,
        name: str | None,
        metadata: dict[str, str],
        metadata_lines: dict[str, int],
    ) -> Sop:
        title = ""
        title_line = 0
        # split top-level tokens into (heading, body) sections at H1/H2
        sections: list[tuple[str, int, list[Token]]] = []
        preamble: list[Token] = []
        body: list[Token] = preamble
        for tok in tokens:
            if tok["type"] == "heading" and tok["attrs"]["level"] <= 2:
                heading = self.plain(tok.get("text", ""))
                if tok["attrs"]["level"] == 1 and not title:
                    title, title_line = heading, tok["_line"]
                    body = preamble
                    continue
                if tok["attrs"]["level"] == 1:
                    self.diag(
                        "SOP007",
                        _WARNING,
                        tok["_line"],
                        f"second H1 '# {heading}': an SOP "
                        "has one '# Title'; make this a '## ' section",
                    )
                body = []
                sections.append((heading, tok["_line"], body))
            else:
                body.append(tok)
        if not title and (metadata.get("title") or metadata.get("Title")):
            title = metadata.get("title") or metadata.get("Title") or ""
        elif not title:
            self.diag(
                "SOP005", _WARNING, 1, "no '# Title' heading: start the file with '# <SOP title>'"
            )
        self.metadata(preamble, metadata, metadata_lines)

        starts = [line for _, line, _ in sections] + [len(lines) + 1]
        out_sections: list[Section] = []
        seen: dict[str, int] = {}
        self.params: list[Parameter] = []
        self.steps: list[_StepB] = []
        self.guards: list[Action] = []
        self.recovery: list[RecoveryRule] = []
        self.examples: list[Example] = []
        self.related: list[Link] = []
        overview: list[str] = []
        prerequisites: list[str] = []
        criteria: list[str] = []
        history: list[str] = []
        steps_line = 0
        for index, (heading, line, toks) in enumerate(sections):
            raw = "\n".join(lines[line : starts[index + 1] - 1]).strip("\n")
            kind = KNOWN_SECTIONS.get(" ".join(heading.lower().split()))
            actions: list[Action] = []
            if kind is not None:
                if kind in seen:
                    self.diag(
                        "SOP008",
                        _WARNING,
                        line,
                        f"section '## {heading}' appears twice (first "
                        f"at line {seen[kind]}): merge them; the second is read as well",
                    )
                seen.setdefault(kind, line)
            if kind == "overview":
                overview.extend(
                    self.plain(t.get("text", "")) for t in toks if t["type"] == "paragraph"
                )
            elif kind == "prerequisites":
                prerequisites.extend(self.item_texts(toks))
            elif kind == "parameters":
                actions = self.parameters(toks)
            elif kind == "steps":
                steps_line = steps_line or line
                self.steps_section(toks)
            elif kind == "success_criteria":
                criteria.extend(self.item_texts(toks))
            elif kind == "error_recovery":
                self.error_recovery(toks, line, heading)
            elif kind == "security":
                self.security(toks)
            elif kind == "examples":
                self.examples_section(toks)
            elif kind == "related":
                self.related_section(toks)
            elif kind == "version_history":
                history.extend(self.item_texts(toks))
            else:
                actions = self.loose_actions(toks)
            out_sections.append(Section(heading, line, raw, tuple(actions)))

        if not steps_line:
            self.diag(
                "SOP010",
                _ERROR,
                title_line or 1,
                "no '## Steps' section: add '## Steps' "
                "with numbered '### 1. Title' steps holding MUST/SHOULD/MAY actions",
            )
        elif not self.steps:
            self.diag(
                "SOP010",
                _ERROR,
                steps_line,
                "'## Steps' has no steps: add '### 1. Title' headings under it",
            )
        self.check_numbering()
        steps = tuple(self.freeze_step(s) for s in self.steps)
        if not name:
            name = _slug(title) or "untitled"
        self.diags.sort(key=lambda d: d.line)
        return Sop(
            name=name,
            title=title,
            path=self.path,
            text=text,
            content_hash=digest,
            metadata=metadata,
            metadata_lines=metadata_lines,
            sections=tuple(out_sections),
            overview="\n\n".join(p for p in overview if p),
            prerequisites=tuple(prerequisites),
            parameters=tuple(self.params),
            steps=steps,
            guards=tuple(self.guards),
            success_criteria=tuple(criteria),
            recovery=tuple(self.recovery),
            examples=tuple(self.examples),
            related=tuple(self.related),
            version_history=tuple(history),
            diagnostics=tuple(self.diags),
        )

    def metadata(self, toks: list[Token], meta: dict[str, str], meta_lines: dict[str, int]) -> None:
        """``**Key**: value`` lines between the H1 and the first section."""
        for tok in toks:
            if tok["type"] == "paragraph":
                entries = [
                    (tok["_line"] + k, ln)
                    for k, ln in enumerate(tok.get("text", "").rstrip("\n").split("\n"))
                ]
            elif tok["type"] == "list":
                entries = [(item["_line"], _first_text(item)) for item in tok["children"]]
            else:
                continue
            for line, raw in entries:
                label = _bold_label(raw.strip())
                if label is None:
                    continue
                key, value = label
                if key in meta:
                    self.diag(
                        "SOP009",
                        _WARNING,
                        line,
                        f"metadata '{key}' given twice (line {meta_lines[key]}): keep one",
                    )
                meta[key] = self.plain(value)
                meta_lines[key] = line

    # ---- simple sections

    def item_texts(self, toks: list[Token]) -> list[str]:
        return [
            self.plain(_first_text(item))
            for tok in toks
            if tok["type"] == "list"
            for item in tok["children"]
        ]

    def related_section(self, toks: list[Token]) -> None:
        for tok in toks:
            if tok["type"] != "list":
                continue
            for item in tok["children"]:
                for title, target in self.links(_first_text(item)):
                    self.related.append(Link(title, target, item["_line"]))

    def error_recovery(self, toks: list[Token], line: int, heading: str) -> None:
        found = False
        for tok in toks:
            if tok["type"] == "table":
                found = True
                for part in tok["children"]:
                    if part["type"] != "table_body":
                        continue
                    for row in part["children"]:
                        cells = [self.plain(c.get("text", "")) for c in row["children"]]
                        self.recovery_row(cells, row["_line"])
            elif tok["type"] == "list":
                for item in tok["children"]:
                    label = _bold_label(_first_text(item).strip())
                    if label is not None:
                        found = True
                        self.recovery_row(
                            [self.plain(label[0]), self.plain(label[1])], item["_line"]
                        )
        if not found:
            self.diag(
                "SOP040",
                _WARNING,
                line,
                f"'## {heading}' has no table: write '| Error Type | Recovery Procedure |' rows",
            )

    def recovery_row(self, cells: list[str], line: int) -> None:
        if len(cells) < 2 or not cells[0] or not cells[1]:
            self.diag(
                "SOP041",
                _WARNING,
                line,
                "recovery row needs an error type and a recovery "
                "procedure: '| Rate limited | Retry up to 3 times with backoff |'",
            )
            return
        self.recovery.append(
            RecoveryRule(error_type=cells[0], procedure=cells[1], line=line, **interpret(cells[1]))
        )

    def security(self, toks: list[Token]) -> None:
        for tok in toks:
            if tok["type"] == "list":
                for item in tok["children"]:
                    act = self.keyword_item(
                        item,
                        ActionKind.GUARD,
                        None,
                        "security",
                        None,
                        where="Security Considerations",
                    )
                    if act is not None:
                        self.guards.append(act)

    def loose_actions(self, toks: list[Token]) -> list[Action]:
        """Keyword items in other sections (Agent SOP constraints, Troubleshooting)."""
        out: list[Action] = []
        for tok in toks:
            if tok["type"] != "list":
                continue
            for item in tok["children"]:
                plain = self.plain(_first_text(item))
                found = _find_keyword(plain)
                if found is not None:
                    out.append(
                        self.make_action(
                            item, plain, found, ActionKind.ACTION, None, "constraints", None
                        )
                    )
        return out

    # ---- parameters

    def parameters(self, toks: list[Token]) -> list[Action]:
        required_default = False
        actions: list[Action] = []
        label = ""
        seen: dict[str, int] = {}
        for tok in toks:
            kind = tok["type"]
            if kind == "heading":
                head = self.plain(tok.get("text", "")).lower()
                required_default = head.startswith("required")
                label = ""
            elif kind == "paragraph":
                found = _bold_label(tok.get("text", "").strip())
                label = found[0].lower() if found else ""
            elif kind == "list":
                if label.startswith("constraint"):
                    actions.extend(self.loose_actions([tok]))
                    continue
                for item in tok["children"]:
                    param = self.parameter(item, required_default)
                    if param is None:
                        continue
                    if param.name in seen:
                        self.diag(
                            "SOP031",
                            _ERROR,
                            param.line,
                            f"parameter '{param.name}' declared "
                            f"twice (first at line {seen[param.name]}): keep one",
                        )
                        continue
                    seen[param.name] = param.line
                    self.params.append(param)
        return actions

    def parameter(self, item: Token, required_default: bool) -> Parameter | None:
        line = item["_line"]
        raw = " ".join(_first_text(item).split())
        name, rest = _param_name(raw)
        if name is None:
            self.diag(
                "SOP030",
                _WARNING,
                line,
                "parameter item not understood: write '- **name** (type): description'",
            )
            return None
        ptype: str | None = None
        required = required_default
        default: str | None = None
        if rest.startswith("("):
            close = rest.find(")")
            inside = rest[1:close] if close > 0 else rest[1:]
            rest = rest[close + 1 :] if close > 0 else ""
            lowered = inside.lower()
            at = lowered.find("default:")
            if at >= 0:
                default = inside[at + 8 :].strip().strip("`").strip()
                if len(default) >= 2 and default[0] == default[-1] and default[0] in "\"'":
                    default = default[1:-1]
                inside = inside[:at]
            for part in inside.split(","):
                word = part.strip()
                if not word:
                    continue
                if word.lower() == "required":
                    required = True
                elif word.lower() == "optional":
                    required = False
                elif ptype is None:
                    ptype = _strip_ticks(word)
        rest = rest.strip()
        for sep in (":", "-", "\u2013", "\u2014"):
            if rest.startswith(sep):
                rest = rest[len(sep) :].strip()
                break
        attributes: list[ParamAttribute] = []
        for child in item.get("children", ())[1:]:
            if child["type"] != "list":
                continue
            for sub in child["children"]:
                text = " ".join(_first_text(sub).split())
                key, sep, value = text.partition(":")
                if not sep or not key.strip() or len(key) > 40:
                    self.diag(
                        "SOP032",
                        _WARNING,
                        sub["_line"],
                        f"parameter '{name}' detail not "
                        "understood: write 'Key: value' (Values, Format, Default, ...)",
                    )
                    continue
                attributes.append(
                    ParamAttribute(key.strip().strip("*"), value.strip(), sub["_line"])
                )
        return Parameter(
            name=name,
            type=ptype,
            description=self.plain(rest),
            required=required,
            line=line,
            attributes=tuple(attributes),
            default=default,
        )

    # ---- steps

    def steps_section(self, toks: list[Token]) -> None:
        step: _StepB | None = None
        block = ""
        branch: dict[str, Any] | None = None
        for tok in toks:
            kind = tok["type"]
            line = tok["_line"]
            if kind == "heading" and tok["attrs"]["level"] == 3:
                step = self.new_step(self.plain(tok.get("text", "")), line)
                self.steps.append(step)
                block, branch = "", None
                continue
            if step is None:
                if kind == "list" and any(
                    _find_keyword(self.plain(_first_text(i))) for i in tok["children"]
                ):
                    self.diag(
                        "SOP011",
                        _WARNING,
                        line,
                        "actions before the first step are "
                        "not part of any step: put them under a '### 1. Title' heading",
                    )
                continue
            found = _step_label(tok)
            if found is not None:
                label, rest = found
                key = " ".join(label.lower().split())
                if key.startswith("for ") and len(key) > 4:
                    block = "branch"
                    branch = {
                        "label": self.plain(label[4:]),
                        "line": line,
                        "code": [],
                        "text": [self.plain(rest)] if rest else [],
                    }
                    step.branches.append(branch)
                    continue
                if key in _BLOCK_LABELS:
                    block, branch = _BLOCK_LABELS[key], None
                    if block == "purpose":
                        step.purpose.append(self.plain(rest))
                    elif rest:
                        step.text.append(self.plain(rest))
                    continue
            if kind == "paragraph":
                raw = tok.get("text", "").strip()
                text = self.plain(raw)
                if block == "purpose":
                    step.purpose.append(text)
                elif block == "branch" and branch is not None:
                    branch["text"].append(text)
                else:
                    step.text.append(text)
            elif kind == "list":
                for item in tok["children"]:
                    self.step_item(step, block, branch, item)
            elif kind == "block_code":
                if block == "branch" and branch is not None:
                    info = str(tok.get("attrs", {}).get("info", "") or "")
                    branch["code"].append(CodeBlock(info, tok.get("raw", ""), line))
            elif kind == "heading":
                block, branch = "", None
                step.text.append(self.plain(tok.get("text", "")))

    def new_step(self, heading: str, line: int) -> _StepB:
        text = heading
        if text.lower().startswith("step "):
            text = text[5:].lstrip()
        i = 0
        while i < len(text) and i < 9 and text[i].isdigit():
            i += 1
        if i == 0:
            number = (self.steps[-1].number + 1) if self.steps else 1
            self.diag(
                "SOP012",
                _ERROR,
                line,
                f"step heading '### {heading}' has no number: write '### {number}. {heading}'",
            )
            return _StepB(number, heading, line)
        number = int(text[:i])
        title = text[i:].lstrip(".):").strip() or heading
        return _StepB(number, title, line)

    def check_numbering(self) -> None:
        for expected, step in enumerate(self.steps, start=1):
            if step.number != expected:
                self.diag(
                    "SOP013",
                    _ERROR,
                    step.line,
                    f"step numbered {step.number} where "
                    f"{expected} was expected: number the steps 1..{len(self.steps)} in order",
                )
                return

    def step_item(
        self, step: _StepB, block: str, branch: dict[str, Any] | None, item: Token
    ) -> None:
        raw = _first_text(item)
        plain = self.plain(raw)
        line = item["_line"]
        label = branch["label"] if block == "branch" and branch is not None else None
        if block == "validation":
            found = _find_keyword(plain)
            if found is None:
                found = _Keyword(Level.MUST, "", plain)
            step.checks.append(
                self.make_action(
                    item, plain, found, ActionKind.CHECK, step.number, "validation", None
                )
            )
        elif block == "error_handling":
            if plain[:3].lower() == "if " and ":" in plain:
                condition, _, response = plain[3:].partition(":")
                step.rules.append(
                    ErrorRule(
                        condition.strip(), response.strip(), line, step.number, _quoted(response)
                    )
                )
                return
            found = _find_keyword(plain)
            if found is None:
                self.diag(
                    "SOP022",
                    _WARNING,
                    line,
                    "Error Handling item not understood: write "
                    "'If <condition>: <response>' or start it with an RFC 2119 keyword",
                )
                return
            step.actions.append(
                self.make_action(
                    item, plain, found, ActionKind.ACTION, step.number, "error_handling", None
                )
            )
        elif block == "purpose":
            step.purpose.append(plain)
        elif block in ("actions", "constraints", "branch"):
            act = self.keyword_item(
                item,
                ActionKind.ACTION,
                step.number,
                "constraints" if block == "constraints" else "actions",
                label,
                where=f"step {step.number}",
                plain=plain,
            )
            if act is not None:
                step.actions.append(act)
            elif block == "branch" and branch is not None:
                branch["text"].append(plain)
        else:
            found = _find_keyword(plain)
            if found is not None:
                step.actions.append(
                    self.make_action(
                        item, plain, found, ActionKind.ACTION, step.number, "actions", None
                    )
                )
            else:
                step.text.append(plain)

    def keyword_item(
        self,
        item: Token,
        kind: ActionKind,
        step: int | None,
        block: str,
        branch: str | None,
        where: str,
        plain: str | None = None,
    ) -> Action | None:
        if plain is None:
            plain = self.plain(_first_text(item))
        found = _find_keyword(plain)
        if found is not None:
            return self.make_action(item, plain, found, kind, step, block, branch)
        first = plain.split(" ", 1)[0].strip(_PUNCT)
        second = plain.split(" ", 2)[1] if plain.count(" ") >= 1 else ""
        if first in _LOWER_MODALS or (first.lower() == "you" and second in _LOWER_MODALS):
            modal = first if first in _LOWER_MODALS else second
            self.diag(
                "SOP021",
                _WARNING,
                item["_line"],
                f"lower-case '{modal}' is not an RFC 2119 "
                f"keyword ({where}): write '{modal.upper()}' to make this an action",
            )
        else:
            self.diag(
                "SOP020",
                _WARNING,
                item["_line"],
                f"item in {where} has no RFC 2119 keyword: "
                "start it with MUST, SHOULD or MAY (upper case), or move it out of the list",
            )
        return None

    def make_action(
        self,
        item: Token,
        plain: str,
        found: _Keyword,
        kind: ActionKind,
        step: int | None,
        block: str,
        branch: str | None,
    ) -> Action:
        children: list[str] = []
        _child_texts(item.get("children", ())[1:], children, self.plain)
        return Action(
            kind=kind,
            level=found.level,
            text=found.text,
            source=" ".join(_first_text(item).split()),
            line=item["_line"],
            step=step,
            keyword=found.keyword or None,
            block=block,
            branch=branch,
            children=tuple(children),
        )

    def freeze_step(self, b: _StepB) -> Step:
        branches = tuple(self.resolve_branch(b.number, br) for br in b.branches)
        purpose = " ".join(p for p in b.purpose if p)
        text = "\n\n".join(t for t in b.text if t)
        if not purpose and b.text:
            purpose = b.text[0]
        if not b.actions and not b.checks:
            self.diag(
                "SOP014",
                _WARNING,
                b.line,
                f"step {b.number} has no actions: add '**Actions**:' with MUST/SHOULD/MAY items",
            )
        return Step(
            number=b.number,
            title=b.title,
            line=b.line,
            purpose=purpose,
            actions=tuple(b.actions),
            checks=tuple(b.checks),
            error_rules=tuple(b.rules),
            branches=branches,
            text=text,
        )

    def resolve_branch(self, step: int, br: dict[str, Any]) -> Branch:
        label: str = br["label"]
        words = label.lower().split()
        candidates = {" ".join(words)}
        if words:
            candidates.add(words[0])
        candidates |= {_singular(c) for c in list(candidates)}
        for param in self.params:
            attr = next((a for a in param.attributes if a.key.lower() in _ENUM_KEYS), None)
            if attr is None:
                continue
            for value in _enum_values(attr.value):
                if value.lower() in candidates:
                    return Branch(
                        label,
                        br["line"],
                        step,
                        param.name,
                        value,
                        tuple(br["code"]),
                        "\n\n".join(t for t in br["text"] if t),
                    )
        self.diag(
            "SOP023",
            _WARNING,
            br["line"],
            f"branch 'For {label}' matches no parameter value: "
            f"list '{_singular(words[0]) if words else label}' in a parameter's 'Values:'",
        )
        return Branch(
            label,
            br["line"],
            step,
            None,
            None,
            tuple(br["code"]),
            "\n\n".join(t for t in br["text"] if t),
        )

    # ---- examples

    def examples_section(self, toks: list[Token]) -> None:
        pending: list[_ExampleB] = []
        current: _ExampleB | None = None
        for tok in toks:
            if tok["type"] == "heading" and tok["attrs"]["level"] == 3:
                title, number = _example_title(self.plain(tok.get("text", "")))
                current = _ExampleB(title, tok["_line"], number)
                pending.append(current)
            elif tok["type"] == "block_code" and current is not None and not current.code_line:
                current.raw = tok.get("raw", "")
                current.code_line = tok["_line"] + (1 if tok.get("style") == "fenced" else 0)
        for ex in pending:
            self.examples.append(self.example(ex))

    def example(self, ex: _ExampleB) -> Example:
        code_lines = ex.raw.split("\n")
        heads = {
            ln.rstrip(): k for k, ln in enumerate(code_lines) if ln[:1] not in (" ", "\t", "#")
        }
        if "Input:" not in heads and "Expected Output:" not in heads:
            return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
        try:
            data = _simple_yaml(ex.raw)  # that shape has no room for an anchor or an alias
            if data is None:
                alias = yaml_alias_line(ex.raw)
                if alias is not None:
                    where = f"example '{ex.title}'"
                    self.diag(
                        "SOP052", _ERROR, ex.code_line + alias, _ALIAS_MESSAGE.format(where=where)
                    )
                    return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
                data = yaml.load(ex.raw, Loader=_yaml_loader())
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = ex.code_line + (mark.line if mark is not None else 0)
            problem = getattr(exc, "problem", None) or "invalid YAML"
            self.diag(
                "SOP050",
                _ERROR,
                line,
                f"example '{ex.title}' is not valid YAML ({problem}): "
                "indent each key under 'Input:' / 'Expected Output:' by two spaces",
            )
            return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
        except Exception as exc:  # hostile YAML (e.g. huge anchors) must not escape
            self.diag(
                "SOP050",
                _ERROR,
                ex.code_line,
                f"example '{ex.title}' could not be read ({type(exc).__name__})",
            )
            return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
        inputs = data.get("Input") if isinstance(data, dict) else None
        expected = data.get("Expected Output") if isinstance(data, dict) else None
        if not isinstance(inputs, dict | None) or not isinstance(expected, dict | None):
            self.diag(
                "SOP051",
                _ERROR,
                ex.code_line,
                f"example '{ex.title}': 'Input:' and "
                "'Expected Output:' must each hold indented 'key: value' lines",
            )
            return Example(ex.title, ex.line, raw=ex.raw, number=ex.number)
        input_line = 0
        key_lines: dict[str, int] = {}
        if "Input:" in heads:
            k0 = heads["Input:"]
            input_line = ex.code_line + k0
            indent = -1
            for k in range(k0 + 1, len(code_lines)):
                ln = code_lines[k]
                stripped = ln.lstrip(" ")
                if not stripped or stripped.startswith("#"):
                    continue
                width = len(ln) - len(stripped)
                if width == 0:
                    break
                if indent < 0:
                    indent = width
                if width == indent:
                    key = stripped.split(":", 1)[0].strip().strip("\"'")
                    key_lines.setdefault(key, ex.code_line + k)
        return Example(
            ex.title,
            ex.line,
            dict(inputs or {}),
            dict(expected or {}),
            input_line,
            key_lines,
            ex.raw,
            ex.number,
        )


# ----------------------------------------------------------------------------- module helpers


@cache
def _yaml_loader() -> type[yaml.SafeLoader]:
    """Safe YAML (libyaml when present) that keeps dates as written: parameters are text."""
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    resolvers = {
        first: [(tag, rx) for tag, rx in found if tag != "tag:yaml.org,2002:timestamp"]
        for first, found in base.yaml_implicit_resolvers.items()
    }
    loader: type[yaml.SafeLoader] = type(
        "_SopYamlLoader", (base,), {"yaml_implicit_resolvers": resolvers}
    )
    return loader


_ALIAS_MESSAGE = (
    "{where} uses a YAML alias: aliases are not read in SOPs (a few nested ones expand "
    "to billions of values); write the values out"
)


def yaml_alias_line(raw: str) -> int | None:
    """The 0-based line of the first YAML alias in ``raw``, or None.

    Why: ``yaml.load`` builds an alias as a shared reference, cheap to load, but every
    walk over the result (validation, JSON, a copy) expands it, so ten nested lists of
    ten aliases are 10**10 values. The events pass is linear in ``raw``; a text without
    ``*`` has no alias and skips it. Raises ``yaml.YAMLError`` as ``yaml.load`` would.
    """
    if "*" not in raw:
        return None
    for event in yaml.parse(raw, Loader=_yaml_loader()):
        if isinstance(event, yaml.AliasEvent):
            mark = event.start_mark
            return 0 if mark is None else int(mark.line)
    return None


# Most examples are ``Key:`` lines over indented ``name: value`` lines (values plain
# words, or quoted without escapes, maybe with a trailing comment). That shape means one
# thing in YAML: nested mappings of scalars, each typed by the loader's own resolvers and
# constructors, with no parser in between; anything else goes to yaml.load.
_YAML_LINE = re.compile(
    r"(?P<key>[A-Za-z_][A-Za-z0-9_]*(?: [A-Za-z0-9_]+)*):"
    r"(?: +(?:(?P<plain>-?[A-Za-z0-9_][A-Za-z0-9_.+/$-]*(?: [A-Za-z0-9_.+/$(),-]+)*)"
    r"|\"(?P<dq>[\t !#-\[\]-~]*)\"|'(?P<sq>[\t -&(-~]*)'))?"  # printable, no escapes
    r"(?: +#[\t -~]*)?"
)
_YAML_TYPED = frozenset("tag:yaml.org,2002:" + t for t in ("str", "int", "float", "bool", "null"))


def _simple_yaml(raw: str) -> dict[Any, Any] | None:
    """``yaml.load(raw)`` for that common shape; None when ``raw`` is anything else."""
    root: dict[Any, Any] = {}
    stack: list[tuple[int, dict[Any, Any]]] = [(0, root)]
    pending: tuple[dict[Any, Any], Any] | None = None  # a ``key:`` whose value is below
    for line in raw.split("\n"):
        body = line.lstrip(" ")
        if not body:
            if line:
                return None  # white space only: leave such details to yaml
            continue
        indent = len(line) - len(body)
        found = _YAML_LINE.fullmatch(line, indent)
        if found is None:
            return None
        if pending is not None and indent > stack[-1][0]:
            child: dict[Any, Any] = {}
            pending[0][pending[1]] = child
            stack.append((indent, child))
        pending = None
        while stack[-1][0] > indent:
            stack.pop()
        if stack[-1][0] != indent:
            return None  # not aligned with any open mapping
        key = _yaml_scalar(found.group("key"))
        if key is _NOT_SIMPLE:
            return None
        plain, dq, sq = found.group("plain", "dq", "sq")
        if plain is not None:
            value = _yaml_scalar(plain)
            if value is _NOT_SIMPLE:
                return None
        elif dq is not None or sq is not None:
            value = dq if dq is not None else sq
        else:
            value, pending = None, (stack[-1][1], key)
        stack[-1][1][key] = value
    return root or None


_NOT_SIMPLE = object()


def _yaml_scalar(text: str) -> Any:
    """A plain scalar, typed exactly as the loader's implicit resolvers type it."""
    loader = _yaml_loader()
    tag = "tag:yaml.org,2002:str"
    for found, pattern in loader.yaml_implicit_resolvers.get(text[0], []):
        if pattern.match(text):
            tag = found
            break
    if tag not in _YAML_TYPED:
        return _NOT_SIMPLE
    return _yaml_constructor().yaml_constructors[tag](
        _yaml_constructor(), yaml.ScalarNode(tag, text)
    )


@cache
def _yaml_constructor() -> yaml.constructor.SafeConstructor:
    return yaml.constructor.SafeConstructor()


def _step_label(tok: Token) -> tuple[str, str] | None:
    """A block label opening Actions / Validation / ... / ``For X`` inside a step.

    ``**Actions**:`` (the house style), a plain ``Actions:`` line, or an ``#### Actions``
    heading; a branch needs the bold or heading form (prose often says "For example:").
    """
    kind = tok["type"]
    if kind == "heading" and tok["attrs"]["level"] >= 4:
        text = str(tok.get("text", "")).strip().strip("*_").rstrip(":").strip()
        return text, ""
    if kind != "paragraph":
        return None
    raw = str(tok.get("text", "")).strip()
    found = _bold_label(raw)
    if found is not None:
        return found
    if "\n" not in raw and raw.endswith(":"):
        key = " ".join(raw[:-1].lower().split())
        if key in _BLOCK_LABELS:
            return raw[:-1].strip(), ""
    return None


def _first_text(item: Token) -> str:
    """The raw text of a list item's first paragraph."""
    children = item.get("children") or ()
    if children and children[0].get("type") in ("block_text", "paragraph"):
        return str(children[0].get("text", ""))
    return ""


def _child_texts(tokens: Any, out: list[str], plain: Callable[[str], str]) -> None:
    """Nested items (and later paragraphs) of a list item, depth first, as plain text."""
    for tok in tokens:
        kind = tok.get("type")
        if kind in ("block_text", "paragraph"):
            text = plain(tok.get("text", ""))
            if text:
                out.append(text)
        elif kind in ("list", "list_item", "block_quote"):
            _child_texts(tok.get("children", ()), out, plain)


def _param_name(raw: str) -> tuple[str | None, str]:
    """``**name** (type): ...`` / ```name` (type): ...`` -> (name, rest after the name)."""
    for mark in ("**", "__", "`"):
        if raw.startswith(mark):
            end = raw.find(mark, len(mark))
            if end < 0:
                return None, raw
            name = _strip_ticks(raw[len(mark) : end]).strip("*")
            rest = raw[end + len(mark) :].strip()
            if name and all(c.isalnum() or c in "_-." for c in name):
                return name, rest
            return None, raw
    head, paren, rest = raw.partition(" (")  # a bare ``name (type): ...``
    if paren and head and all(c.isalnum() or c in "_-." for c in head):
        return head, "(" + rest
    return None, raw


def _example_title(heading: str) -> tuple[str, int | None]:
    """``Example 2: Refund`` -> ("Refund", 2); other headings stay as written."""
    if heading.lower().startswith("example "):
        rest = heading[8:].lstrip()
        i = 0
        while i < len(rest) and i < 6 and rest[i].isdigit():
            i += 1
        if i:
            title = rest[i:].lstrip(".:)-\u2013\u2014 ").strip()
            return title or heading, int(rest[:i])
    return heading, None


def _name_from_path(path: str | None) -> str | None:
    if not path:
        return None
    base = os.path.basename(path)
    for suffix in (".sop.md", ".md"):
        if base.endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base or None


def _slug(title: str) -> str:
    out: list[str] = []
    for ch in title.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def parse(text: str | bytes, path: str | None = None) -> Sop:
    """Parse SOP markdown; never raises on bad input (see ``Sop.diagnostics``)."""
    parser = _Parser(path)
    try:
        return parser.run(text)
    except RecursionError:
        message = "markdown nested too deeply to read: flatten the nested lists or quotes"
        code = "SOP015"
    except Exception as exc:  # last line of defence; the fuzz tests assert it never fires
        message = f"internal parser error ({type(exc).__name__}: {exc}); please report this file"
        code = "SOP099"
    raw = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    return Sop(
        name=_name_from_path(path) or "untitled",
        title="",
        path=path,
        text=text if isinstance(text, str) else raw.decode("utf-8", "replace"),
        content_hash=sha256(raw).hexdigest(),
        diagnostics=(*parser.diags, Diagnostic(code, _ERROR, message, 1, 1, path)),
    )
