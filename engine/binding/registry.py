"""Handler registration and matching: SOP lines -> Python functions.

A line is ``clean``ed once; literal patterns are one dictionary hit on its folded
text, and the patterned handlers its key words and word count select
(``engine.binding.index``) are each asked with their regex (``engine.binding.patterns``).
What a line binds to is memoized per registry until the next registration, and so
is what the planner derives from a whole SOP's lines (``remember``).
Registration is linear: parse the pattern, file it in the index; nothing is compiled.

Ranking, independent of registration (import) order: the narrowest scope wins
(sop+step > step > sop > global), then literal beats patterned, then the most specific
pattern (A beats B when B matches A's sample text but not the reverse). Anything left
tied is a BindingError naming both definitions as file:line; ``validate()`` finds
such ties at load time.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Sequence
from typing import Any, TypeVar, cast

from engine.binding.handler import HandlerDef, Match
from engine.binding.index import Entry, Table
from engine.binding.normalize import clean
from engine.binding.patterns import Pattern, parse_pattern
from engine.errors import BindingError
from engine.model import Action, ActionKind

F = TypeVar("F", bound=Callable[..., Any])
_T = TypeVar("_T")
_MISSING: Any = object()
# what a line finds: every (entry, captures) candidate, in candidate order
_Found = tuple[tuple[Entry, dict[str, Any]], ...]
# a memoized line: (text, check line, sop, step, every candidate wanted)
_MemoKey = tuple[str, bool, str | None, str | None, bool]


def _where(func: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(func, "__code__", None)
    if code is not None:
        return code.co_filename, code.co_firstlineno
    try:
        return inspect.getsourcefile(func) or "?", inspect.getsourcelines(func)[1]
    except (TypeError, OSError):
        return "?", 0


class Registry:
    """Handlers, services and fixtures. Registration is linear; regexes compile on first use."""

    #: lines memoized per registry (an SOP has hundreds), then the memo starts over
    memo_limit = 32_768
    #: derived values (``remember``) kept per registry, then that memo starts over
    remember_limit = 256

    def __init__(self) -> None:
        self._action = Table()  # ACTION and GUARD lines
        self._check = Table()  # CHECK lines
        self._handlers: list[HandlerDef] = []
        self._services: dict[str, Callable[..., Any]] = {}
        self._fixtures: dict[str, Callable[..., Any]] = {}
        # what _search found per line: valid until the next registration
        self._memo: dict[_MemoKey, _Found] = {}
        # what callers derived from this registry's bindings (``remember``): the same lifetime
        self._remembered: dict[Hashable, Any] = {}

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
        handler = HandlerDef(pattern, table_kind, func, name, file, line, sop, step, timeout)
        (self._check if check else self._action).add(Entry(handler, parsed, len(self._handlers)))
        self._memo.clear()  # a new handler can change any line's binding
        self._remembered.clear()
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

    def remember(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """``compute()``, kept under ``key`` until the next registration: for a value that
        depends only on ``key`` and this registry's handlers (the planner keeps an SOP's
        bindings here, so planning it again is a lookup). Nothing is kept when it raises."""
        try:
            return cast(_T, self._remembered[key])
        except KeyError:
            pass
        value = compute()
        if len(self._remembered) >= self.remember_limit:
            self._remembered.clear()
        self._remembered[key] = value
        return value

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
        text, check, step_key = _line(action, step, kind)
        return [
            Match(e.handler, dict(c)) for e, c in self._lookup(text, check, sop, step_key, True)
        ]

    def match(
        self,
        action: Action | str,
        *,
        sop: str | None = None,
        step: int | str | None = None,
        kind: ActionKind = ActionKind.ACTION,
    ) -> Match | None:
        """The winning handler for a line, None when nothing binds it; BindingError on a tie."""
        text, check, step_key = _line(action, step, kind)
        found = self._lookup(text, check, sop, step_key, False)
        if not found:
            return None
        entry, captures = found[0] if len(found) == 1 else _best(found, text)
        return Match(entry.handler, dict(captures))  # a copy: the memo keeps the original

    def _lookup(
        self, text: str, check: bool, sop: str | None, step_key: str | None, everything: bool
    ) -> _Found:
        """``_search``, memoized: the result depends only on the arguments and the
        registered handlers (the memo is cleared on every registration)."""
        key = (text, check, sop, step_key, everything)
        found = self._memo.get(key)
        if found is None:
            found = self._search(
                text, self._check if check else self._action, sop, step_key, everything
            )
            if len(self._memo) >= self.memo_limit:
                self._memo.clear()
            self._memo[key] = found
        return found

    @staticmethod
    def _search(
        text: str, table: Table, sop: str | None, step_key: str | None, everything: bool
    ) -> _Found:
        """Every candidate for a line in scope, literal ones first. Unless
        ``everything``, patterned ones are not tried when a literal candidate already
        has a scope no patterned handler can beat (the winner is the same)."""
        cleaned = clean(text)
        folded = cleaned.lower()
        found: list[tuple[Entry, dict[str, Any]]] = []
        literals = table.literal.get(folded)
        if literals is not None:
            found = [(entry, {}) for entry in literals if entry.applies(sop, step_key)]
            best = max((entry.rank for entry, _ in found), default=-1)
            if not everything and best >= table.pattern_rank:
                return tuple(found)
        for entry in table.candidates(folded.split(" ")):
            if entry.applies(sop, step_key):
                captures = entry.pattern.match(cleaned)
                if captures is not None:
                    found.append((entry, captures))
        return tuple(found)

    # -- load-time checks -----------------------------------------------------------
    def validate(self) -> None:
        """BindingError for any two handlers that can match one text with equal rank.

        Checks identical normalized patterns in overlapping scopes, patterns that
        match each other's sample text (equally general), and that every capture
        name is a parameter of its function.
        """
        problems: list[str] = []
        for table in (self._action, self._check):
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


def _line(
    action: Action | str, step: int | str | None, kind: ActionKind
) -> tuple[str, bool, str | None]:
    """A line's text, whether it is a CHECK line, and its step as text: an Action
    carries its own kind and (unless ``step`` is given) its step."""
    if isinstance(action, str):
        text = action
    else:
        text, kind = action.text, action.kind
        if step is None:
            step = action.step
    return text, kind is ActionKind.CHECK, None if step is None else str(step)


def _same_rank(a: Entry, b: Entry) -> bool:
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


def _signature_problem(entry: Entry) -> str | None:
    code = getattr(entry.handler.func, "__code__", None)
    if code is None or code.co_flags & inspect.CO_VARKEYWORDS:
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


def _best(found: Sequence[tuple[Entry, dict[str, Any]]], text: str) -> tuple[Entry, dict[str, Any]]:
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
