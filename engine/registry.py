"""Handler registration and matching: SOP lines -> Python functions.

Lookup: literal patterns are one dictionary hit on the normalized line. Patterned
ones are found through an index of their word count and literal words (see
``_Table``), so a line tries only the patterns it could match, and each of those
with one regex call; a line with non-ASCII letters goes through buckets keyed by
leading literal words instead. Results are memoized per line until the next
registration. Registration appends to dicts of lists: O(1); regexes compile on
first use.

Ranking: the narrowest scope wins (sop+step > step > sop > global), then literal
beats patterned, then the most specific pattern (A beats B when B matches A's
sample text but not the reverse). Anything left tied is a BindingError naming both
definitions as file:line; ``validate()`` finds such ties at load time.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import tomllib
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import BindingError, HandlerImportError
from engine.model import Action, ActionKind
from engine.normalize import clean
from engine.patterns import PREFIX_WORDS, Pattern, parse_pattern

F = TypeVar("F", bound=Callable[..., Any])
_MEMO_MAX = 32_768  # memoized lines per registry (an SOP has hundreds; the bench 10,000)
_CO_VARKEYWORDS = inspect.CO_VARKEYWORDS


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

    __slots__ = ("guard", "handler", "order", "pattern", "rank", "sop", "step")

    def __init__(self, handler: HandlerDef, pattern: Pattern, seq: int) -> None:
        self.handler = handler
        self.pattern = pattern
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


@dataclass
class _Table:
    """The handlers of one kind.

    ``literal``: folded text -> entries. ``buckets``: leading literal words -> entries.
    ``anchored``: patterns with no complete leading word, by their longest literal
    word. ``wild``: patterns with no complete literal word at all. A line with
    non-ASCII letters is looked up through these buckets.

    An ASCII line uses the shape index instead: no placeholder matches white space,
    so a line matches a pattern only with the same word count and the same (folded)
    word wherever the pattern has a pure-literal ASCII word. ``shapes`` holds, per
    word count, one table per layout of those words (positions -> words -> entries):
    a line costs one lookup per layout. Past ``_MAX_SHAPES`` layouts, entries are
    keyed by their first such word (``by_word``); entries with none sit in
    ``by_count``. Built on the first lookup, then kept up to date by ``add``:
    registration stays O(1). Candidates are then confirmed by the pattern's regex.
    """

    literal: dict[str, list[_Entry]] = field(default_factory=dict)
    buckets: dict[str, list[_Entry]] = field(default_factory=dict)
    anchored: dict[str, list[_Entry]] = field(default_factory=dict)
    wild: list[_Entry] = field(default_factory=list)
    pattern_rank: int = -1  # the widest scope rank among patterned entries
    patterned: int = 0
    indexed: bool = False
    # word count -> [(getter of the literal positions, literal words -> entries)]
    shapes: dict[int, list[tuple[itemgetter[Any], dict[Any, list[_Entry]]]]] = field(
        default_factory=dict
    )
    skeletons: dict[tuple[int, tuple[int, ...]], dict[Any, list[_Entry]]] = field(
        default_factory=dict
    )
    by_word: dict[tuple[int, int, str], list[_Entry]] = field(default_factory=dict)
    by_count: dict[int, list[_Entry]] = field(default_factory=dict)
    positions: dict[int, list[int]] = field(default_factory=dict)

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
        self.patterned += 1
        prefix = pattern.prefix
        if prefix:
            entry.order |= (prefix.count(" ") + 1) << _ORDER_SHIFT
            if not prefix.isascii():
                entry.guard = prefix
            bucket = self.buckets.get(prefix)
            if bucket is None:
                self.buckets[prefix] = [entry]
            else:
                bucket.append(entry)
        elif anchor := pattern.anchor():
            entry.order |= _ANCHORED << _ORDER_SHIFT
            if not anchor.isascii():
                entry.guard = anchor
            self.anchored.setdefault(anchor, []).append(entry)
        else:
            entry.order |= _WILD << _ORDER_SHIFT
            self.wild.append(entry)
        if self.indexed:
            self._index(entry)

    def _index(self, entry: _Entry) -> None:
        count, words = entry.pattern.shape()
        if not words:
            self.by_count.setdefault(count, []).append(entry)
            return
        positions = tuple(position for position, _ in words)
        texts = tuple(word for _, word in words)
        key: str | tuple[str, ...] = texts[0] if len(texts) == 1 else texts
        table = self.skeletons.get((count, positions))
        if table is None:
            shapes = self.shapes.setdefault(count, [])
            if len(shapes) < _MAX_SHAPES:
                table = self.skeletons[(count, positions)] = {}
                shapes.append((itemgetter(*positions), table))
        if table is not None:
            table.setdefault(key, []).append(entry)
            return
        # an unusual shape: keyed by its first literal word, so a line's probes stay bounded
        position, word = words[0]
        same = self.by_word.get((count, position, word))
        if same is None:
            self.by_word[(count, position, word)] = [entry]
            used = self.positions.setdefault(count, [])
            if position not in used:
                used.append(position)
        else:
            same.append(entry)

    def build(self) -> None:
        """The shape index of every patterned entry, in registration order."""
        for entry in sorted(
            (e for group in self.groups() for e in group if not e.pattern.literal),
            key=lambda e: e.order & ((1 << _ORDER_SHIFT) - 1),
        ):
            self._index(entry)
        self.indexed = True

    def shaped(self, words: list[str]) -> list[_Entry]:
        """Patterned entries an ASCII line of ``words`` (folded) may match, bucket order."""
        if not self.indexed:
            self.build()
        count = len(words)
        found = self.by_count.get(count)
        shapes = self.shapes.get(count)
        if shapes is not None:
            for getter, table in shapes:
                more = table.get(getter(words))
                if more is not None:
                    found = more if found is None else [*found, *more]
        positions = self.positions.get(count)
        if positions is not None:
            by_word = self.by_word
            for position in positions:
                more = by_word.get((count, position, words[position]))
                if more is not None:
                    found = more if found is None else [*found, *more]
        if found is None:
            return []
        if len(found) > 1:
            return sorted(found, key=_order)
        return found

    def bucketed(self, words: list[str]) -> list[_Entry]:
        """Patterned entries a line may match, through the buckets (any line)."""
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
        return [
            *self.literal.values(),
            *self.buckets.values(),
            *self.anchored.values(),
            self.wild,
        ]


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
        # binding results per line: see _collect
        self._memo: dict[
            tuple[str, bool, str | None, str | None, bool],
            tuple[tuple[_Entry, dict[str, Any]], ...],
        ] = {}

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
            self.add(func, pattern, kind=kind, sop=sop, step=step, timeout=timeout, parsed=parsed)
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
        file, line = _where(func)
        name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
        if parsed is None:
            try:
                parsed = parse_pattern(pattern)
            except BindingError as exc:
                raise BindingError(f"{file}:{line}: {exc}") from None
        check = kind is ActionKind.CHECK
        table_kind = ActionKind.CHECK if check else ActionKind.ACTION
        handler = HandlerDef(pattern, table_kind, func, name, file, line, sop, step, timeout)
        (self._check if check else self._action).add(_Entry(handler, parsed, len(self._handlers)))
        if self._memo:
            self._memo.clear()  # a new handler can change any line's binding
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
        return [Match(e.handler, dict(c)) for e, c in self._collect(action, sop, step, kind, True)]

    def match(
        self,
        action: Action | str,
        *,
        sop: str | None = None,
        step: int | str | None = None,
        kind: ActionKind = ActionKind.ACTION,
    ) -> Match | None:
        """The winning handler for a line, None when nothing binds it; BindingError on a tie."""
        found = self._collect(action, sop, step, kind, False)
        if not found:
            return None
        if len(found) > 1:
            text = action.text if isinstance(action, Action) else action
            found = (_best(found, text),)
        entry, captures = found[0]
        return Match(entry.handler, dict(captures))  # a copy: the memo keeps the original

    def _collect(
        self,
        action: Action | str,
        sop: str | None,
        step: int | str | None,
        kind: ActionKind,
        everything: bool,
    ) -> tuple[tuple[_Entry, dict[str, Any]], ...]:
        """Candidates for a line, memoized per (text, table, sop, step, everything).

        The result depends only on those and the registered handlers, so the memo is
        cleared on every registration and when it reaches ``_MEMO_MAX`` lines.
        """
        if isinstance(action, str):
            text = action
        else:
            text, kind = action.text, action.kind
            if step is None:
                step = action.step
        check = kind is ActionKind.CHECK
        step_key = None if step is None else str(step)
        key = (text, check, sop, step_key, everything)
        memo = self._memo
        found = memo.get(key)
        if found is None:
            found = self._search(
                text, self._check if check else self._action, sop, step_key, everything
            )
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[key] = found
        return found

    def _search(
        self,
        text: str,
        table: _Table,
        sop: str | None,
        step_key: str | None,
        everything: bool,
    ) -> tuple[tuple[_Entry, dict[str, Any]], ...]:
        """Candidates for a line. Unless ``everything``, patterned ones are skipped when a
        literal candidate already has a scope no patterned handler can beat (same winner)."""
        cleaned = clean(text)
        folded = cleaned.lower()
        found: list[tuple[_Entry, dict[str, Any]]] = []
        best_literal = -1
        literals = table.literal.get(folded)
        if literals is not None:
            for entry in literals:
                if (entry.sop is None or entry.sop == sop) and (
                    entry.step is None or entry.step == step_key
                ):
                    found.append((entry, {}))
                    if entry.rank > best_literal:
                        best_literal = entry.rank
        if not everything and best_literal >= table.pattern_rank:
            return tuple(found)  # a literal at this scope wins whatever the patterns say
        if not table.patterned:
            return tuple(found)
        words = folded.split(" ")
        via_buckets = not cleaned.isascii()  # where IGNORECASE and str.lower() may differ
        entries = table.bucketed(words) if via_buckets else table.shaped(words)
        for entry in entries:
            if entry.sop is not None and entry.sop != sop:
                continue
            if entry.step is not None and entry.step != step_key:
                continue
            guard = entry.guard
            if guard is not None and not via_buckets and not _guard_admits(entry, guard, words):
                continue
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
    ra, rb = a.regex, b.regex
    return any(
        ra.fullmatch(text) is not None and rb.fullmatch(text) is not None
        for text in (*a.witnesses(), *b.witnesses())
    )


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


# -- loading handler modules ---------------------------------------------------------
def _find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml from ``start`` up to the repository or filesystem root."""
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
        if (directory / ".git").exists():
            return None
    return None


def configured_modules(project_dir: Path | None = None) -> tuple[list[str], Path]:
    """``[tool.sop] handlers`` from the nearest pyproject.toml, and the project directory."""
    start = (project_dir or Path.cwd()).resolve()
    pyproject = _find_pyproject(start)
    if pyproject is None:
        return [], start
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise HandlerImportError(f"{pyproject}: {str(exc).splitlines()[0]}") from None
    modules = data.get("tool", {}).get("sop", {}).get("handlers", [])
    if not isinstance(modules, list) or not all(isinstance(m, str) for m in modules):
        raise HandlerImportError(f"{pyproject}: [tool.sop] handlers must be a list of module names")
    return list(modules), pyproject.parent


def _failure_location(exc: BaseException) -> str | None:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    engine_dir = os.path.dirname(os.path.abspath(__file__))
    frames = [f for f in frames if os.path.dirname(f.filename) != engine_dir] or frames
    if not frames:
        return None
    return f"{frames[-1].filename}:{frames[-1].lineno}"


def import_handler_module(name: str) -> None:
    """Import one handler module; any failure becomes a one-line HandlerImportError."""
    try:
        importlib.import_module(name)
    except BindingError as exc:
        where = _failure_location(exc)
        place = f" ({where})" if where else ""
        raise BindingError(f"handler module {name!r}{place}: {exc}") from None
    except Exception as exc:
        where = _failure_location(exc)
        place = f" ({where})" if where else ""
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise HandlerImportError(
            f"cannot import handler module {name!r}{place}: {type(exc).__name__}: {detail}"
        ) from None


def load_handlers(modules: Iterable[str] = (), *, project_dir: Path | None = None) -> Registry:
    """Import the configured and the given handler modules; validate; the default registry."""
    configured, root = configured_modules(project_dir)
    root_str = str(root)
    if root_str not in sys.path:
        sys.path.insert(0, root_str)
    for name in dict.fromkeys([*configured, *modules]):
        import_handler_module(name)
    default_registry.validate()
    return default_registry


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
    "configured_modules",
    "default_registry",
    "fixture",
    "load_handlers",
    "service",
]
