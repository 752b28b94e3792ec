"""Tasks beyond the top-level list item: nested items and prose sentences that carry an
RFC 2119 keyword. An Agent SOP writes obligations there too ("- You MUST tailor ...:"
with a "SHOULD avoid ..." sub-item; "You MUST NOT proceed until ..." as a paragraph);
dropping them would run less than the author wrote.

A nested task keeps its parent's step, block and branch and names the parent's id
(``Action.parent``); its own id is its line, so ids stay stable and unique.
"""

from __future__ import annotations

import re

from engine.language.actions import action_at, keyword_of, make_action
from engine.language.keywords import may_hold_keyword
from engine.language.markdown import Token
from engine.language.reading import Reading, first_text
from engine.model import Action, ActionKind

__all__ = ["loose_actions", "nested_tasks", "sentence_tasks"]

#: a sentence ends at . ! or ? followed by space and an upper-case letter or a quote
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'`*_(\[])")


def sentence_tasks(
    r: Reading,
    tok: Token,
    kind: ActionKind,
    step: int | None,
    block: str,
    branch: str | None,
    parent: str | None = None,
) -> list[Action]:
    """Each keyword sentence of a paragraph, an action at the sentence's own line."""
    raw = str(tok.get("text", ""))
    if not may_hold_keyword(raw):  # the common case: no split
        return []
    by_line: dict[int, list[str]] = {}  # one task a line: an id is its line
    start = 0
    for m in [*_SENTENCE_END.finditer(raw), None]:
        end = len(raw) if m is None else m.start()
        sentence = raw[start:end].strip()
        line = tok["_line"] + raw.count("\n", 0, start)
        start = len(raw) if m is None else m.end()
        if sentence and may_hold_keyword(sentence):
            by_line.setdefault(line, []).append(sentence)
    out: list[Action] = []
    for line, sentences in by_line.items():
        text = " ".join(" ".join(sentences).split())
        found = keyword_of(r, text, r.plain(text))
        if found is not None:
            out.append(action_at(r, found, kind, line, text, step, block, branch, (), parent))
    return out


def nested_tasks(r: Reading, item: Token, parent: Action) -> list[Action]:
    """The keyword items and sentences nested in ``item`` (after its first paragraph),
    depth first, each under the nearest enclosing task."""
    out: list[Action] = []
    for tok in (item.get("children") or ())[1:]:
        _walk(r, tok, parent, out)
    return out


def _walk(r: Reading, tok: Token, parent: Action, out: list[Action]) -> None:
    kind = tok.get("type")
    if kind == "list":
        for child in tok.get("children", ()):
            raw = first_text(child)
            plain = r.plain(raw)
            found = keyword_of(r, raw, plain) if raw else None
            under = parent
            if found is not None:
                under = make_action(
                    r,
                    child,
                    plain,
                    found,
                    parent.kind,
                    parent.step,
                    parent.block,
                    parent.branch,
                    parent.id,
                )
                out.append(under)
            for sub in (child.get("children") or ())[1 if raw else 0 :]:
                _walk(r, sub, under, out)
    elif kind in ("paragraph", "block_text"):
        out.extend(
            sentence_tasks(r, tok, parent.kind, parent.step, parent.block, parent.branch, parent.id)
        )
    elif kind == "block_quote":
        for sub in tok.get("children", ()):
            _walk(r, sub, parent, out)


def loose_actions(r: Reading, toks: list[Token], block: str = "constraints") -> list[Action]:
    """Keyword items, their nested tasks and keyword sentences in other sections (Agent
    SOP parameter-acquisition constraints, Troubleshooting)."""
    out: list[Action] = []
    for tok in toks:
        if tok["type"] == "paragraph":
            out.extend(sentence_tasks(r, tok, ActionKind.ACTION, None, block, None))
            continue
        if tok["type"] != "list":
            continue
        for item in tok["children"]:
            raw = first_text(item)
            plain = r.plain(raw)
            found = keyword_of(r, raw, plain)
            if found is not None:
                act = make_action(r, item, plain, found, ActionKind.ACTION, None, block, None)
                out.append(act)
                out.extend(nested_tasks(r, item, act))
    return out
