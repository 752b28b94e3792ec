"""Keyword lines -> :class:`engine.model.Action`: the one shape every section's actions,
constraints, checks and guards take."""

from __future__ import annotations

from engine.language.keywords import (
    LOWER_MODALS,
    PUNCT,
    Keyword,
    find_keyword,
    mentions_removed,
)
from engine.language.markdown import Token
from engine.language.reading import INFO, WARNING, Reading, child_texts, first_text
from engine.model import Action, ActionKind

__all__ = ["action_at", "keyword_item", "keyword_of", "make_action"]


def keyword_of(r: Reading, raw: str, plain: str) -> Keyword | None:
    """The keyword of an item whose raw markdown is ``raw`` (plain text ``plain``):
    keywords in code spans, quotes and HTML comments are left out."""
    masked = mentions_removed(raw)
    return find_keyword(plain, None if masked is None else r.plain(masked))


def make_action(
    r: Reading,
    item: Token,
    plain: str,
    found: Keyword,
    kind: ActionKind,
    step: int | None,
    block: str,
    branch: str | None,
    parent: str | None = None,
) -> Action:
    children: list[str] = []
    child_texts(item.get("children", ())[1:], children, r.plain)
    return action_at(
        r,
        found,
        kind,
        item["_line"],
        " ".join(first_text(item).split()),
        step,
        block,
        branch,
        tuple(children),
        parent,
    )


def action_at(
    r: Reading,
    found: Keyword,
    kind: ActionKind,
    line: int,
    source: str,
    step: int | None,
    block: str,
    branch: str | None,
    children: tuple[str, ...] = (),
    parent: str | None = None,
) -> Action:
    """The action of a keyword sentence at ``line``; a mix of strengths is noted (SOP024)."""
    if found.mixed:
        r.diag(
            "SOP024",
            INFO,
            line,
            f"item mixes {' and '.join(dict.fromkeys(found.mixed))}: the strongest "
            f"({found.keyword}) sets its level; split it into one item per keyword",
        )
    return Action(
        kind=kind,
        level=found.level,
        text=found.text,
        source=source,
        line=line,
        step=step,
        keyword=found.keyword or None,
        block=block,
        branch=branch,
        children=children,
        parent=parent,
    )


def keyword_item(
    r: Reading,
    item: Token,
    kind: ActionKind,
    step: int | None,
    block: str,
    branch: str | None,
    where: str,
    plain: str | None = None,
) -> Action | None:
    """The item as an action, or None with SOP020/SOP021 saying which keyword it lacks."""
    raw = first_text(item)
    if plain is None:
        plain = r.plain(raw)
    found = keyword_of(r, raw, plain)
    if found is not None:
        return make_action(r, item, plain, found, kind, step, block, branch)
    first = plain.split(" ", 1)[0].strip(PUNCT)
    second = plain.split(" ", 2)[1] if plain.count(" ") >= 1 else ""
    if first in LOWER_MODALS or (first.lower() == "you" and second in LOWER_MODALS):
        modal = first if first in LOWER_MODALS else second
        r.diag(
            "SOP021",
            WARNING,
            item["_line"],
            f"lower-case '{modal}' is not an RFC 2119 "
            f"keyword ({where}): write '{modal.upper()}' to make this an action",
        )
    else:
        r.diag(
            "SOP020",
            WARNING,
            item["_line"],
            f"item in {where} has no RFC 2119 keyword: "
            "start it with MUST, SHOULD or MAY (upper case), or move it out of the list",
        )
    return None
