"""Handler registration and matching: SOP lines -> Python functions.

Lookup: literal patterns are one dictionary hit on the normalized line. Patterned
ones are found through an index of their word count and literal words (see
``_Table``), so a line tries only the patterns it could match, and each of those with
its program (``engine.binding.patterns``: the pattern's regex semantics, no regex compiled).
A line whose case folding may differ from the regex's goes through buckets keyed by
leading literal words and the patterns' regexes instead. Results are memoized per
line until the next registration. Registration is O(1) per handler: parse the
pattern, add it to the index, pick its (shared) program; nothing is compiled.

Ranking: the narrowest scope wins (sop+step > step > sop > global), then literal
beats patterned, then the most specific pattern (A beats B when B matches A's
sample text but not the reverse). Anything left tied is a BindingError naming both
definitions as file:line; ``validate()`` finds such ties at load time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any, TypeVar

from engine.binding.normalize import clean
from engine.binding.patterns import PREFIX_WORDS, Pattern, WordsRun, folds_like_regex, parse_pattern
from engine.errors import BindingError
from engine.model import Action, ActionKind

F = TypeVar("F", bound=Callable[..., Any])
_MEMO_MAX = 32_768  # memoized lines per registry (an SOP has hundreds; the bench 10,000)
_CO_VARKEYWORDS = inspect.CO_VARKEYWORDS
_CHECK = ActionKind.CHECK
_new = object.__new__
_MISSING: Any = object()


@dataclass(frozen=True)
class HandlerDef:
    """One registered handler; ``file:line`` is where its function is defined."""

    pattern: str
    kind: ActionKind  # ACTION handlers bind ACTION and GUARD lines; CHECK binds CHECK lines
    func: Callable[..., Any]
    name: str  # module.qualname
    file: str
    line: int
    sop: str | None = None
    step: int | str | None = None
    timeout: float | None = None

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def scope_rank(self) -> int:
        """Narrower scope wins: sop+step 3, step 2, sop 1, global 0."""
        return (2 if self.step is not None else 0) + (1 if self.sop is not None else 0)

    def applies(self, sop: str | None, step: int | str | None) -> bool:
        if self.sop is not None and self.sop != sop:
            return False
        return self.step is None or (step is not None and str(self.step) == str(step))

    def describe(self) -> str:
        scope = "".join(
            f", {k}={v!r}" for k, v in (("sop", self.sop), ("step", self.step)) if v is not None
        )
        return f"{self.name} ({self.location}, pattern {self.pattern!r}{scope})"


@dataclass(frozen=True)
class Match:
    handler: HandlerDef
    captures: dict[str, Any]


class _Entry:
    """A handler with its parsed pattern and its scope, flattened for the hot loop."""

    __slots__ = (
        "guard",
        "handler",
        "order",
        "pattern",
        "rank",
        "run",
        "sop",
        "step",
        "verified",
    )

    def __init__(self, handler: HandlerDef, pattern: Pattern, seq: int) -> None:
        self.handler = handler
        self.pattern = pattern
        self.run: WordsRun = _unset  # its program: set by _Table.add (see _program)
        self.verified = False  # set by _Table._index: the index checks its literal words
        self.order = seq  # set by _Table.add: bucket rank, then registration order
        self.guard: str | None = None  # set by _Table.add: a non-ASCII bucket key
        self.sop = handler.sop
        self.step = None if handler.step is None else str(handler.step)
        self.rank = (2 if self.step is not None else 0) + (1 if self.sop is not None else 0)


_ANCHORED, _WILD = 5, 6  # bucket ranks after the prefix lengths 1..PREFIX_WORDS
_ORDER_SHIFT = 40  # order = bucket rank << 40 | registration number
_MAX_SHAPES = 12  # literal-word layouts indexed exactly per word count; others by one word


def _order(entry: _Entry) -> int:
    return entry.order


def _unset(cleaned: str, folded: str, words: list[str]) -> dict[str, Any] | None:
    raise AssertionError("a literal entry has no program")  # pragma: no cover


class _Count:
    """The shape index for lines of one word count (see ``_Table``)."""

    __slots__ = ("layouts", "plain", "positions", "tables")

    def __init__(self) -> None:
        self.plain: list[_Entry] | None = None  # patterns with no pure-literal ASCII word
        self.tables: dict[tuple[int, ...], dict[Any, list[_Entry]]] = {}  # by positions
        # one per layout of literal words: (getter of their positions, words -> entries)
        self.layouts: list[tuple[itemgetter[Any], dict[Any, list[_Entry]]]] = []
        self.positions: list[int] = []  # of the first literal word, for by_word


@dataclass
class _Table:
    """The handlers of one kind.

    ``literal``: folded text -> entries. Patterned entries are in the shape index:
    no placeholder matches white space, so a clean line matches a pattern only with
    the same word count and the same (folded) word wherever the pattern has a
    pure-literal ASCII word. ``counts`` holds per word count one table per layout of
    those words (positions -> words -> entries): a line costs one lookup per layout,
    and an entry found so has had every literal word checked (``verified``), so its
    program checks only the words holding placeholders. Past ``_MAX_SHAPES``
    layouts, entries are keyed by their first such word (``by_word``) and checked
    whole. Kept up to date by ``add``.

    ``buckets``: leading literal words -> entries; ``anchored``: patterns with no
    complete leading word, by their longest literal word; ``wild``: patterns with no
    complete literal word at all. For lines where str.lower() and IGNORECASE may
    differ, and for ``validate``; built when first needed. Their order (prefix length,
    then registration) is the order candidates are listed and ties are named in.
    """

    literal: dict[str, list[_Entry]] = field(default_factory=dict)
    buckets: dict[str, list[_Entry]] = field(default_factory=dict)
    anchored: dict[str, list[_Entry]] = field(default_factory=dict)
    wild: list[_Entry] = field(default_factory=list)
    pattern_rank: int = -1  # the widest scope rank among patterned entries
    patterned: list[_Entry] = field(default_factory=list)  # in registration order
    bucketed_entries: bool = False  # buckets, anchored and wild are built (see _buckets)
    counts: dict[int, _Count] = field(default_factory=dict)  # word count -> its index
    by_word: dict[tuple[int, int, str], list[_Entry]] = field(default_factory=dict)

    def add(self, entry: _Entry) -> None:
        pattern = entry.pattern
        if pattern.literal:
            same = self.literal.get(pattern.key)
            if same is None:
                self.literal[pattern.key] = [entry]
            else:
                same.append(entry)
            return
        if entry.rank > self.pattern_rank:
            self.pattern_rank = entry.rank
        self.patterned.append(entry)
        head = pattern.parts[0]
        # complete literal words before the first placeholder: the words of ``prefix``
        words = min(head.count(" "), PREFIX_WORDS) if isinstance(head, str) else 0
        if words:
            entry.order |= words << _ORDER_SHIFT
            if isinstance(head, str) and not head.isascii() and not pattern.prefix.isascii():
                entry.guard = pattern.prefix
        elif anchor := pattern.anchor():
            entry.order |= _ANCHORED << _ORDER_SHIFT
            if not anchor.isascii():
                entry.guard = anchor
        else:
            entry.order |= _WILD << _ORDER_SHIFT
        if self.bucketed_entries:
            self._bucket(entry)
        self._index(entry)
        entry.run = _program(entry)  # cheap: no regex; patterns of one form share one

    def _bucket(self, entry: _Entry) -> None:
        rank = entry.order >> _ORDER_SHIFT
        if rank == _WILD:
            self.wild.append(entry)
        elif rank == _ANCHORED:
            self.anchored.setdefault(entry.pattern.anchor(), []).append(entry)
        else:
            self.buckets.setdefault(entry.pattern.prefix, []).append(entry)

    def _buckets(self) -> None:
        """The buckets, built when first needed (few lines need them), then kept up to date."""
        if not self.bucketed_entries:
            for entry in self.patterned:
                self._bucket(entry)
            self.bucketed_entries = True

    def _index(self, entry: _Entry) -> None:
        count, positions, texts, _ = entry.pattern.layout()
        per = self.counts.get(count)
        if per is None:
            per = self.counts[count] = _Count()
        if not positions:
            entry.verified = True  # no literal word to check
            if per.plain is None:
                per.plain = [entry]
            else:
                per.plain.append(entry)
            return
        table = per.tables.get(positions)
        if table is None and len(per.layouts) < _MAX_SHAPES:
            table = per.tables[positions] = {}
            per.layouts.append((itemgetter(*positions), table))
        if table is not None:
            entry.verified = True  # a line finds it only with all its literal words
            key = texts[0] if len(texts) == 1 else texts  # what the getter returns
            same = table.get(key)
            if same is None:
                table[key] = [entry]
            else:
                same.append(entry)
            return
        # an unusual shape: keyed by its first literal word, so a line's probes stay bounded
        position, word = positions[0], texts[0]
        same = self.by_word.get((count, position, word))
        if same is None:
            self.by_word[(count, position, word)] = [entry]
            if position not in per.positions:
                per.positions.append(position)
        else:
            same.append(entry)

    def by_first_word(
        self, per: _Count, words: list[str], found: list[_Entry] | None
    ) -> list[_Entry] | None:
        """``found`` and the entries of unusual shapes (see ``_index``) the line may match."""
        count = len(words)
        for position in per.positions:
            more = self.by_word.get((count, position, words[position]))
            if more is not None:
                found = more if found is None else [*found, *more]
        return found

    def bucketed(self, words: list[str]) -> list[_Entry]:
        """Patterned entries a line may match, through the buckets (any line)."""
        self._buckets()
        found: list[_Entry] = []
        by_prefix = self.buckets
        if by_prefix:
            key = words[0]
            bucket = by_prefix.get(key)
            if bucket is not None:
                found += bucket
            for word in words[1:PREFIX_WORDS]:
                key = key + " " + word
                bucket = by_prefix.get(key)
                if bucket is not None:
                    found += bucket
        anchored = self.anchored
        if anchored:
            for word in set(words):
                bucket = anchored.get(word)
                if bucket is not None:
                    found += bucket
        found += self.wild
        return found

    def groups(self) -> list[list[_Entry]]:
        """Entries that could match the same line share a group (for validate)."""
        self._buckets()
        return [
            *self.literal.values(),
            *self.buckets.values(),
            *self.anchored.values(),
            self.wild,
        ]


# What Registry._search found for a line, as the memo keeps it: () for nothing, the
# entry alone for one without captures, (entry, captures) for one with captures, else a
# tuple of such pairs. The common cases keep no tuple per line (fewer objects for the
# garbage collector to walk).
_Found = _Entry | tuple[Any, ...]


def _found(found: list[tuple[_Entry, dict[str, Any]]] | None) -> _Found:
    if not found:
        return ()
    if len(found) > 1:
        return tuple(found)
    entry, captures = found[0]
    return (entry, captures) if captures else entry


def _pairs(found: _Found) -> tuple[tuple[_Entry, dict[str, Any]], ...]:
    """Every candidate in ``found`` as (entry, captures)."""
    if isinstance(found, _Entry):
        return ((found, {}),)
    if not found:
        return ()
    return (found,) if isinstance(found[0], _Entry) else found


def _in_scope(entry: _Entry, sop: str | None, step_key: str | None) -> bool:
    return (entry.sop is None or entry.sop == sop) and (
        entry.step is None or entry.step == step_key
    )


def _program(entry: _Entry) -> WordsRun:
    """How a line found through the shape index is confirmed: by the words holding
    placeholders when the index has checked every literal word, else by the pattern."""
    pattern = entry.pattern
    if entry.verified:
        words = pattern.words_program()
        if words is not None:
            return words
    line = pattern.program()

    def whole(cleaned: str, folded: str, words: list[str]) -> Any:
        return line(cleaned, folded)

    return whole


def _guard_admits(entry: _Entry, guard: str, words: list[str]) -> bool:
    """A non-ASCII bucket key binds only lines whose folded words hold it (as buckets do)."""
    rank = entry.order >> _ORDER_SHIFT
    if rank == _ANCHORED:
        return guard in words
    return " ".join(words[:rank]) == guard


def _where(func: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(func, "__code__", None)
    if code is not None:
        return code.co_filename, code.co_firstlineno
    try:
        return inspect.getsourcefile(func) or "?", inspect.getsourcelines(func)[1]
    except (TypeError, OSError):
        return "?", 0


class Registry:
    """Handlers, services and fixtures. Registration is O(1); regexes compile on first use."""

    def __init__(self) -> None:
        self._action = _Table()
        self._check = _Table()  # CHECK lines; ACTION and GUARD lines use _action
        self._tables: dict[ActionKind, _Table] = {
            ActionKind.ACTION: self._action,
            ActionKind.CHECK: self._check,
        }
        self._handlers: list[HandlerDef] = []
        self._services: dict[str, Callable[..., Any]] = {}
        self._fixtures: dict[str, Callable[..., Any]] = {}
        # what _search found per line, by context (check, sop, step, everything): see _lookup
        self._memo: dict[tuple[bool, str | None, str | None, bool], dict[str, _Found]] = {}
        self._memo_size = 0  # lines memoized, all contexts

    # -- registration -------------------------------------------------------------
    def action(
        self,
        pattern: str,
        *,
        sop: str | None = None,
        step: int | str | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Decorator: bind ACTION and GUARD lines matching ``pattern`` to the function."""
        return self._decorator(pattern, ActionKind.ACTION, sop, step, timeout)

    def check(
        self,
        pattern: str,
        *,
        sop: str | None = None,
        step: int | str | None = None,
        timeout: float | None = None,
    ) -> Callable[[F], F]:
        """Decorator: bind Validation (CHECK) lines; return False to fail the check."""
        return self._decorator(pattern, ActionKind.CHECK, sop, step, timeout)

    def _decorator(
        self,
        pattern: str,
        kind: ActionKind,
        sop: str | None,
        step: int | str | None,
        timeout: float | None,
    ) -> Callable[[F], F]:
        parsed = parse_pattern(pattern)  # a bad pattern fails at the decorator line

        def register(func: F) -> F:
            self._add(func, pattern, kind, sop, step, timeout, parsed)
            return func

        return register

    def add(
        self,
        func: Callable[..., Any],
        pattern: str,
        *,
        kind: ActionKind = ActionKind.ACTION,
        sop: str | None = None,
        step: int | str | None = None,
        timeout: float | None = None,
        parsed: Pattern | None = None,
    ) -> HandlerDef:
        """Register without decorator syntax (same rules as ``action``/``check``)."""
        return self._add(func, pattern, kind, sop, step, timeout, parsed)

    def _add(
        self,
        func: Callable[..., Any],
        pattern: str,
        kind: ActionKind,
        sop: str | None,
        step: int | str | None,
        timeout: float | None,
        parsed: Pattern | None,
    ) -> HandlerDef:
        file, line = _where(func)
        qualname = getattr(func, "__qualname__", _MISSING)  # repr(func) only when needed
        if qualname is _MISSING:
            qualname = repr(func)
        name = f"{getattr(func, '__module__', '?')}.{qualname}"
        if parsed is None:
            try:
                parsed = parse_pattern(pattern)
            except BindingError as exc:
                raise BindingError(f"{file}:{line}: {exc}") from None
        check = kind is ActionKind.CHECK
        table_kind = ActionKind.CHECK if check else ActionKind.ACTION
        # HandlerDef(...) without the frozen dataclass's __init__ (one object.__setattr__
        # per field: a fifth of a registration's time): the same object
        handler: HandlerDef = _new(HandlerDef)
        handler.__dict__.update(
            {
                "pattern": pattern,
                "kind": table_kind,
                "func": func,
                "name": name,
                "file": file,
                "line": line,
                "sop": sop,
                "step": step,
                "timeout": timeout,
            }
        )
        (self._check if check else self._action).add(_Entry(handler, parsed, len(self._handlers)))
        if self._memo:
            self._memo.clear()  # a new handler can change any line's binding
            self._memo_size = 0
        self._handlers.append(handler)
        return handler

    def service(self, name: str) -> Callable[[F], F]:
        """Decorator: ``factory(ctx) -> object``, created lazily per run as ctx.services[name]."""
        return self._named(self._services, "service", name)

    def fixture(self, prefix: str) -> Callable[[F], F]:
        """Decorator: ``factory(services, symbol) -> real id`` for example symbols like cus_."""
        return self._named(self._fixtures, "fixture", prefix)

    def _named(
        self, table: dict[str, Callable[..., Any]], what: str, name: str
    ) -> Callable[[F], F]:
        def register(func: F) -> F:
            if name in table:
                old, new = _where(table[name]), _where(func)
                raise BindingError(
                    f"{what} {name!r} defined twice: {old[0]}:{old[1]} and {new[0]}:{new[1]}"
                )
            table[name] = func
            return func

        return register

    # -- queries ------------------------------------------------------------------
    def handlers(self) -> list[HandlerDef]:
        return list(self._handlers)

    @property
    def generation(self) -> int:
        """Grows with every registration (handlers are only ever added): a cache key."""
        return len(self._handlers)

    def services(self) -> dict[str, Callable[..., Any]]:
        return dict(self._services)

    def fixtures(self) -> dict[str, Callable[..., Any]]:
        return dict(self._fixtures)

    def candidates(
        self,
        action: Action | str,
        *,
        sop: str | None = None,
        step: int | str | None = None,
        kind: ActionKind = ActionKind.ACTION,
    ) -> list[Match]:
        """Every handler whose pattern and scope admit the line, unranked."""
        if isinstance(action, str):
            text = action
        else:
            text, kind = action.text, action.kind
            if step is None:
                step = action.step
        step_key = None if step is None else str(step)
        found = self._lookup(text, kind is _CHECK, sop, step_key, True)
        return [Match(e.handler, dict(c)) for e, c in _pairs(found)]

    def match(
        self,
        action: Action | str,
        *,
        sop: str | None = None,
        step: int | str | None = None,
        kind: ActionKind = ActionKind.ACTION,
    ) -> Match | None:
        """The winning handler for a line, None when nothing binds it; BindingError on a tie."""
        if isinstance(action, str):
            text = action
        else:
            text, kind = action.text, action.kind
            if step is None:
                step = action.step
        # _lookup inlined: the per-line hot path
        check = kind is _CHECK
        step_key = None if step is None else str(step)
        context = (check, sop, step_key, False)
        lines = self._memo.get(context)
        if lines is None:
            lines = self._memo[context] = {}
        found = lines.get(text)
        if found is None:
            found = self._search(text, self._check if check else self._action, sop, step_key, False)
            if self._memo_size >= _MEMO_MAX:
                self._memo.clear()
                self._memo_size = 0
                lines = self._memo[context] = {}
            lines[text] = found
            self._memo_size += 1
        if isinstance(found, _Entry):
            entry, captures = found, None
        elif not found:
            return None
        elif isinstance(found[0], _Entry):
            entry, captures = found
        else:
            entry, captures = _best(found, text)
        # Match(handler, captures) without the frozen dataclass's __init__ (one
        # object.__setattr__ per field): the same object for a third of the time;
        # the captures are a copy, the memo keeps the original
        match: Match = _new(Match)
        fields = match.__dict__
        fields["handler"] = entry.handler
        fields["captures"] = captures.copy() if captures else {}
        return match

    def _lookup(
        self, text: str, check: bool, sop: str | None, step_key: str | None, everything: bool
    ) -> _Found:
        """``_search``, memoized per line and context (check, sop, step, everything).

        The result depends only on those and the registered handlers, so the memo is
        cleared on every registration and when it holds ``_MEMO_MAX`` lines.
        """
        context = (check, sop, step_key, everything)
        lines = self._memo.get(context)
        if lines is None:
            lines = self._memo[context] = {}
        found = lines.get(text)
        if found is None:
            found = self._search(
                text, self._check if check else self._action, sop, step_key, everything
            )
            if self._memo_size >= _MEMO_MAX:
                self._memo.clear()
                self._memo_size = 0
                lines = self._memo[context] = {}
            lines[text] = found
            self._memo_size += 1
        return found

    def _search(
        self,
        text: str,
        table: _Table,
        sop: str | None,
        step_key: str | None,
        everything: bool,
    ) -> _Found:
        """Candidates for a line: () for none, (entry, captures) for one, else a tuple
        of such pairs (one tuple less to keep per memoized line, in the common case).
        Unless ``everything``, patterned ones are skipped when a literal candidate
        already has a scope no patterned handler can beat (same winner)."""
        cleaned = clean(text)
        folded = cleaned.lower()
        found: list[tuple[_Entry, dict[str, Any]]] | None = None
        literals = table.literal.get(folded)
        if literals is not None:
            first = literals[0]
            if not (everything or first.rank or table.pattern_rank > 0 or len(literals) > 1):
                return first  # the common case: one global literal, and it wins
            found = []
            best_literal = -1
            for entry in literals:
                if not entry.rank or _in_scope(entry, sop, step_key):
                    found.append((entry, {}))
                    if entry.rank > best_literal:
                        best_literal = entry.rank
            if not everything and best_literal >= table.pattern_rank:
                return _found(found)  # a literal at this scope wins whatever the patterns say
        if not table.patterned:
            return _found(found)
        words = folded.split(" ")
        if not cleaned.isascii() and not folds_like_regex(cleaned):
            return _found(self._search_buckets(found, table, cleaned, words, sop, step_key))
        # the shape index (see _Table), inlined
        per = table.counts.get(len(words))
        if per is None:
            return () if found is None else _found(found)
        entries = per.plain
        for getter, index in per.layouts:
            more = index.get(getter(words))
            if more is not None:
                entries = more if entries is None else [*entries, *more]
        if per.positions:
            entries = table.by_first_word(per, words, entries)
        if entries is None:
            return () if found is None else _found(found)
        if len(entries) > 1:
            entries = sorted(entries, key=_order)  # bucket rank, then registration order
        for entry in entries:
            if entry.rank and not _in_scope(entry, sop, step_key):
                continue
            if entry.guard is not None and not _guard_admits(entry, entry.guard, words):
                continue
            captures = entry.run(cleaned, folded, words)
            if captures is not None:
                if found is None:
                    if len(entries) == 1:  # the common case: one candidate
                        return (entry, captures) if captures else entry
                    found = []
                found.append((entry, captures))
        return () if found is None else _found(found)

    @staticmethod
    def _search_buckets(
        found: list[tuple[_Entry, dict[str, Any]]] | None,
        table: _Table,
        cleaned: str,
        words: list[str],
        sop: str | None,
        step_key: str | None,
    ) -> list[tuple[_Entry, dict[str, Any]]] | None:
        """For a line where IGNORECASE and str.lower() may differ: the buckets, the regexes."""
        for entry in table.bucketed(words):
            if not entry.rank or _in_scope(entry, sop, step_key):
                captures = entry.pattern.match_regex(cleaned)
                if captures is not None:
                    if found is None:
                        found = []
                    found.append((entry, captures))
        return found

    # -- load-time checks -----------------------------------------------------------
    def validate(self) -> None:
        """BindingError for any two handlers that can match one text with equal rank.

        Checks identical normalized patterns in overlapping scopes, patterns that
        match each other's sample text (equally general), and that every capture
        name is a parameter of its function.
        """
        problems: list[str] = []
        for table in self._tables.values():
            for group in table.groups():
                for index, entry in enumerate(group):
                    for other in group[index + 1 :]:
                        if _same_rank(entry, other) and _equivalent(entry.pattern, other.pattern):
                            problems.append(_tie_message(entry.handler, other.handler))
                    if not entry.pattern.literal:
                        problem = _signature_problem(entry)
                        if problem:
                            problems.append(problem)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise BindingError(problems[0] + more)


def _same_rank(a: _Entry, b: _Entry) -> bool:
    """Both can apply to one line with the same scope rank."""
    ha, hb = a.handler, b.handler
    if ha.scope_rank != hb.scope_rank:
        return False
    if ha.sop != hb.sop:
        return False
    return ha.step is None or hb.step is None or str(ha.step) == str(hb.step)


def _equivalent(a: Pattern, b: Pattern) -> bool:
    """Both can match one sample text and neither is more specific: a true tie."""
    if a.key == b.key:
        return True
    if a.literal or b.literal or _beats(a, b) or _beats(b, a):
        return False
    return any(a.matches(text) and b.matches(text) for text in (*a.witnesses(), *b.witnesses()))


def _signature_problem(entry: _Entry) -> str | None:
    code = getattr(entry.handler.func, "__code__", None)
    if code is None or code.co_flags & _CO_VARKEYWORDS:
        return None
    accepted = set(code.co_varnames[: code.co_argcount + code.co_kwonlyargcount])
    missing = [p.name for p in entry.pattern.placeholders if p.name not in accepted]
    if not missing:
        return None
    return (
        f"{entry.handler.location}: handler {entry.handler.name} does not accept "
        f"{', '.join(missing)} captured by pattern {entry.handler.pattern!r}"
    )


def _tie_message(a: HandlerDef, b: HandlerDef, text: str | None = None) -> str:
    line = f" for line {text!r}" if text is not None else ""
    return f"ambiguous handlers{line}: {a.describe()} and {b.describe()}"


def _best(
    found: Sequence[tuple[_Entry, dict[str, Any]]], text: str
) -> tuple[_Entry, dict[str, Any]]:
    top = max(e.handler.scope_rank for e, _ in found)
    ranked = [m for m in found if m[0].handler.scope_rank == top]
    literals = [m for m in ranked if m[0].pattern.literal]
    if literals:
        ranked = literals
    if len(ranked) == 1:
        return ranked[0]
    winners = [
        m
        for m in ranked
        if not any(o is not m and _beats(o[0].pattern, m[0].pattern) for o in ranked)
    ]
    if len(winners) == 1:
        return winners[0]
    a, b = (winners or ranked)[:2]
    raise BindingError(_tie_message(a[0].handler, b[0].handler, text))


def _beats(a: Pattern, b: Pattern) -> bool:
    """A is more specific than B: B matches A's sample text but A does not match B's."""
    if a.literal != b.literal:
        return a.literal
    return b.covers(a) and not a.covers(b)


default_registry = Registry()
action = default_registry.action
check = default_registry.check
service = default_registry.service
fixture = default_registry.fixture

__all__ = [
    "HandlerDef",
    "Match",
    "Registry",
    "action",
    "check",
    "default_registry",
    "fixture",
    "service",
]
