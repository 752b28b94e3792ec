"""Markdown -> mistune tokens: the block pass, and inline text for what the model keeps.

One stock mistune (``renderer=None`` with the table plugin) for the process. The block
pass runs over the whole file; inline parsing runs only on the texts the model keeps
(mistune's own AST parse inlines every block), which is why a full parse costs about
what mistune's parse alone does.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from functools import cache, lru_cache
from typing import Any

import mistune
from mistune.core import BlockState

__all__ = ["Token", "block_tokens", "clear_caches", "links", "plain"]

Token = dict[str, Any]
Env = MutableMapping[str, Any]

#: where inline markup can start: a character mistune's inline rules start on (its
#: newline rules aside: white space is folded anyway), but not an underscore run between
#: two letters or digits, which CommonMark never lets open or close emphasis (it is both
#: left- and right-flanking with no punctuation beside it). A text without any is plain.
#: (One character class first, so the regex engine skips plain text fast.)
_MARKUP = re.compile(r"[\\`*!\[\]<_](?:(?<![A-Za-z0-9_]_)|(?![A-Za-z0-9_]))")


@cache
def _markdown() -> mistune.Markdown:
    """The process's one parser: ``create_markdown(renderer="ast", plugins=["table"])``."""
    return mistune.create_markdown(renderer=None, plugins=["table"])


def block_tokens(text: str) -> tuple[list[Token], Env]:
    """The block tokens of ``text`` (inline text left raw) and the parse's env (ref links)."""
    state = BlockState()
    state.process(text if text.endswith("\n") else text + "\n")
    _markdown().block.parse(state)
    return state.tokens, state.env


def plain(raw: str, env: Env) -> str:
    """Inline markdown -> plain text (code spans keep their content), white space folded."""
    raw = raw.strip()
    if not raw:
        return ""
    if _MARKUP.search(raw) is None:
        return " ".join(raw.split())
    if env.get("ref_links"):  # reference links: the answer depends on this file
        return _plain(raw, env)
    return _plain_cached(raw)


def links(raw: str, env: Env) -> list[tuple[str, str]]:
    """Every ``[title](target)`` in inline markdown, as (title, target)."""
    raw = raw.strip()
    if env.get("ref_links"):
        return _links(raw, env)
    return list(_links_cached(raw))


def _plain(raw: str, env: Env) -> str:
    out: list[str] = []
    _flatten(_markdown().inline(raw, env), out)
    return " ".join("".join(out).split())


def _links(raw: str, env: Env) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    _collect_links(_markdown().inline(raw, env), out)
    return out


# Inline parsing is a pure function of the text when the file defines no reference
# links; SOPs repeat their labels and phrases (``**Purpose**:``, `usd`, ...) across files.
@lru_cache(maxsize=4096)
def _plain_cached(raw: str) -> str:
    return _plain(raw, {"ref_links": {}})


@lru_cache(maxsize=1024)
def _links_cached(raw: str) -> tuple[tuple[str, str], ...]:
    return tuple(_links(raw, {"ref_links": {}}))


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
