"""Which handlers a line may match, so each line tries a few regexes, not all of them.

Literal patterns are one dictionary hit on the folded line. Every other pattern is
filed under its *key words* and its word count (no placeholder matches white space,
and both sides are ``clean``ed to single spaces, so a line matches only with the
pattern's word count):

* its leading complete literal words, up to ``PREFIX_WORDS`` ("verify pending invoice
  in {target}" under "verify pending invoice in");
* else its longest complete literal word, at its position (the *anchor*: "{system}
  sync ledger records" under "records" at word 4);
* else nothing: tried for every line of its word count.

Key words are compared folded by ``str.lower()``; everything else in the pattern is its
regex's (re.IGNORECASE) to decide. The two differ only for the four characters that
IGNORECASE equates with an ASCII letter (long s, Kelvin sign, dotted and dotless i): a
line spelling a key word with one of them does not find the handler.

Candidates are listed by key (one leading word, two, ... four, then anchored, then
unkeyed), then in registration order: the order ties are named in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.binding.handler import HandlerDef
from engine.binding.patterns import Pattern

PREFIX_WORDS = 4  # patterns are filed under up to this many leading literal words
_ANCHORED = PREFIX_WORDS + 1  # the rank of anchored patterns in candidate order
_UNKEYED = PREFIX_WORDS + 2


class Entry:
    """A handler with its parsed pattern, its scope and its place in candidate order."""

    __slots__ = ("handler", "order", "pattern", "rank", "sop", "step")

    def __init__(self, handler: HandlerDef, pattern: Pattern, seq: int) -> None:
        self.handler = handler
        self.pattern = pattern
        self.sop = handler.sop
        self.step = None if handler.step is None else str(handler.step)
        self.rank = handler.scope_rank
        self.order = (_key_rank(pattern), seq)

    def applies(self, sop: str | None, step_key: str | None) -> bool:
        return (self.sop is None or self.sop == sop) and (
            self.step is None or self.step == step_key
        )


def _lead(pattern: Pattern) -> list[str]:
    """The leading complete literal words (folded), up to PREFIX_WORDS."""
    lead: list[str] = []
    for word in pattern.words[:PREFIX_WORDS]:
        if word is None:
            break
        lead.append(word)
    return lead


def anchor(pattern: Pattern) -> tuple[int, str] | None:
    """The first longest complete literal word and its position, if any."""
    best: tuple[int, str] | None = None
    for position, word in enumerate(pattern.words):
        if word and (best is None or len(word) > len(best[1])):
            best = (position, word)
    return best


def _key_rank(pattern: Pattern) -> int:
    if pattern.literal:
        return 0
    lead = _lead(pattern)
    if lead:
        return len(lead)
    return _ANCHORED if anchor(pattern) is not None else _UNKEYED


@dataclass
class _Count:
    """The patterned entries of one word count, by key."""

    lead: dict[str, list[Entry]] = field(default_factory=dict)  # "w1 w2" -> entries
    sizes: list[int] = field(default_factory=list)  # leading-word counts in use, ascending
    anchored: dict[tuple[int, str], list[Entry]] = field(default_factory=dict)
    positions: list[int] = field(default_factory=list)  # anchor positions in use
    unkeyed: list[Entry] = field(default_factory=list)


@dataclass
class Table:
    """The handlers of one kind (ACTION and GUARD lines share one; CHECK lines another)."""

    literal: dict[str, list[Entry]] = field(default_factory=dict)  # folded text -> entries
    patterned: list[Entry] = field(default_factory=list)  # in registration order
    pattern_rank: int = -1  # the widest scope rank among patterned entries
    counts: dict[int, _Count] = field(default_factory=dict)  # word count -> its entries

    def add(self, entry: Entry) -> None:
        pattern = entry.pattern
        if pattern.literal:
            self.literal.setdefault(pattern.key, []).append(entry)
            return
        self.patterned.append(entry)
        self.pattern_rank = max(self.pattern_rank, entry.rank)
        per = self.counts.setdefault(len(pattern.words), _Count())
        lead = _lead(pattern)
        if lead:
            per.lead.setdefault(" ".join(lead), []).append(entry)
            if len(lead) not in per.sizes:
                per.sizes.append(len(lead))
                per.sizes.sort()
        elif (found := anchor(pattern)) is not None:
            per.anchored.setdefault(found, []).append(entry)
            if found[0] not in per.positions:
                per.positions.append(found[0])
        else:
            per.unkeyed.append(entry)

    def candidates(self, words: list[str]) -> list[Entry]:
        """Patterned entries a line (its folded words) may match, in candidate order."""
        per = self.counts.get(len(words))
        if per is None:
            return []
        found: list[Entry] = []
        buckets = 0
        for size in per.sizes:
            bucket = per.lead.get(" ".join(words[:size]))
            if bucket is not None:
                found += bucket
                buckets += 1
        for position in per.positions:
            bucket = per.anchored.get((position, words[position]))
            if bucket is not None:
                found += bucket
                buckets += 1
        if per.unkeyed:
            found += per.unkeyed
            buckets += 1
        if buckets > 1:  # anchors at several positions interleave in registration order
            found.sort(key=_order)
        return found

    def groups(self) -> list[list[Entry]]:
        """Entries filed under one key share a group (``Registry.validate`` compares
        each pair of a group): literal text, leading words, anchor word, no key."""
        lead: dict[str, list[Entry]] = {}
        anchored: dict[str, list[Entry]] = {}
        unkeyed: list[Entry] = []
        for entry in self.patterned:
            words = _lead(entry.pattern)
            if words:
                lead.setdefault(" ".join(words), []).append(entry)
            elif (found := anchor(entry.pattern)) is not None:
                anchored.setdefault(found[1], []).append(entry)
            else:
                unkeyed.append(entry)
        return [*self.literal.values(), *lead.values(), *anchored.values(), unkeyed]


def _order(entry: Entry) -> tuple[int, int]:
    return entry.order


__all__ = ["PREFIX_WORDS", "Entry", "Table", "anchor"]
