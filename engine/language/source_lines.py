"""Source lines for mistune's tokens: mistune records no positions, so a cursor walks the
source lines in step with the tokens (both in document order) and stamps each block
token with ``_line`` (1-based): linear in the file, no re-parsing, no backtracking.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.language.markdown import Token

__all__ = ["Cursor", "stamp"]


def _content(line: str) -> str:
    """A line without its indentation and block-quote markers."""
    return line.lstrip(" \t>")


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


class Cursor:
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


def stamp(tokens: list[Token], cur: Cursor, depth: int = 0) -> None:
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


def _stamp_one(tok: Token, cur: Cursor, depth: int) -> None:
    """Stamp one token (and its children) and move the cursor past it."""
    kind = tok["type"]
    if kind == "blank_line":
        tok["_line"] = min(cur.i, cur.n - 1) + 1 if cur.n else 1
        return
    if kind == "list":
        first = -1
        for item in tok.get("children", ()):
            start = cur.seek(_is_list_marker)
            item["_line"] = start + 1
            if first < 0:
                first = start
            cur.i = start + 1 if _marker_only(cur.lines[start]) else start
            stamp(item.get("children", []), cur, depth + 1)
            cur.i = max(cur.i, start + 1)
        tok["_line"] = (first if first >= 0 else cur.seek()) + 1
    elif kind == "block_quote":
        start = cur.seek()
        tok["_line"] = start + 1
        cur.i = start
        stamp(tok.get("children", []), cur, depth + 1)
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
