"""Handler registration and matching: SOP lines -> Python functions.

Lookup: literal patterns are one dictionary hit on the normalized line. Patterned
ones sit in buckets keyed by their leading literal words (up to four), so a line
only tries the buckets its own first words select; a pattern with no leading word
("{system} sync records") is indexed by its longest literal word instead. Each
bucket first tries one combined regex of all its patterns, so a line that matches
none of them costs one regex call. Registration appends to a dict of lists: O(1);
regexes compile on first use.

Ranking: the narrowest scope wins (sop+step > step > sop > global), then literal
beats patterned, then the most specific pattern (A beats B when B matches A's
sample text but not the reverse). Anything left tied is a BindingError naming both
definitions as file:line; ``validate()`` finds such ties at load time.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import tomllib
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import BindingError, HandlerImportError
from engine.model import Action, ActionKind
from engine.normalize import clean
from engine.patterns import PREFIX_WORDS, Pattern, parse_pattern

F = TypeVar("F", bound=Callable[..., Any])
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

    __slots__ = ("handler", "pattern", "rank", "sop", "step")

    def __init__(self, handler: HandlerDef, pattern: Pattern) -> None:
        self.handler = handler
        self.pattern = pattern
        self.rank = handler.scope_rank
        self.sop = handler.sop
        self.step = None if handler.step is None else str(handler.step)


class _Bucket(list[_Entry]):
    """Patterned entries sharing a key, searched through combined regexes.

    ``combined(k)`` is one alternation of entries k.. (each alternative its own group),
    built on first use and dropped when the bucket grows, so registration stays O(1).
    A line that matches nothing in the bucket costs one regex call; one that matches
    entry i costs a second call for entries i+1.. (a tie or a more general pattern).
    """

    COMBINE_MIN = 3

    def __init__(self) -> None:
        super().__init__()
        self._combined: dict[int, re.Pattern[str]] = {}
        self._built_for = 0

    def combined(self, start: int) -> re.Pattern[str]:
        if self._built_for != len(self):
            self._combined.clear()
            self._built_for = len(self)
        regex = self._combined.get(start)
        if regex is None:
            source = "|".join(
                f"({entry.pattern.source_regex(capture=False)})" for entry in self[start:]
            )
            regex = self._combined[start] = re.compile(source, re.IGNORECASE)
        return regex

    def matching(self, cleaned: str) -> list[_Entry]:
        """The entries whose pattern could match ``cleaned`` (every one, in small buckets)."""
        if len(self) < self.COMBINE_MIN:
            return self
        out: list[_Entry] = []
        start = 0
        while start < len(self):
            found = self.combined(start).fullmatch(cleaned)
            if found is None or found.lastindex is None:
                break
            index = start + found.lastindex - 1
            out.append(self[index])
            start = index + 1
        return out


@dataclass
class _Table:
    """The handlers of one kind.

    ``literal``: folded text -> entries. ``buckets``: leading literal words -> entries.
    ``anchored``: patterns with no complete leading word, by their longest literal
    word. ``wild``: patterns with no complete literal word at all (tried for every line).
    """

    literal: dict[str, list[_Entry]] = field(default_factory=dict)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    anchored: dict[str, _Bucket] = field(default_factory=dict)
    wild: _Bucket = field(default_factory=_Bucket)
    pattern_rank: int = -1  # the widest scope rank among patterned entries

    def add(self, entry: _Entry) -> None:
        pattern = entry.pattern
        if pattern.literal:
            self.literal.setdefault(pattern.key, []).append(entry)
            return
        self.pattern_rank = max(self.pattern_rank, entry.rank)
        if pattern.prefix:
            self.buckets.setdefault(pattern.prefix, _Bucket()).append(entry)
        elif anchor := pattern.anchor():
            self.anchored.setdefault(anchor, _Bucket()).append(entry)
        else:
            self.wild.append(entry)

    def groups(self) -> list[list[_Entry]]:
        """Entries that could match the same line share a group (for validate)."""
        return [
            *self.literal.values(),
            *self.buckets.values(),
            *self.anchored.values(),
            self.wild,
        ]


def _try(
    bucket: _Bucket,
    cleaned: str,
    sop: str | None,
    step_key: str | None,
    found: list[tuple[_Entry, dict[str, Any]]],
) -> None:
    """Append every entry of ``bucket`` whose scope and pattern admit the line."""
    for entry in bucket.matching(cleaned):
        if entry.sop is not None and entry.sop != sop:
            continue
        if entry.step is not None and entry.step != step_key:
            continue
        captures = entry.pattern.match(cleaned)
        if captures is not None:
            found.append((entry, captures))


def _where(func: Callable[..., Any]) -> tuple[str, int]:
    code = getattr(func, "__code__", None)
    if code is not None:
        return code.co_filename, code.co_firstlineno
    try:
        return inspect.getsourcefile(func) or "?", inspect.getsourcelines(func)[1]
    except (TypeError, OSError):
        return "?", 0


def _kind_table(kind: ActionKind) -> ActionKind:
    return ActionKind.CHECK if kind is ActionKind.CHECK else ActionKind.ACTION


_TABLE_OF = {kind: _kind_table(kind) for kind in ActionKind}


class Registry:
    """Handlers, services and fixtures. Registration is O(1); regexes compile on first use."""

    def __init__(self) -> None:
        self._tables: dict[ActionKind, _Table] = {
            ActionKind.ACTION: _Table(),
            ActionKind.CHECK: _Table(),
        }
        self._handlers: list[HandlerDef] = []
        self._services: dict[str, Callable[..., Any]] = {}
        self._fixtures: dict[str, Callable[..., Any]] = {}

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
        handler = HandlerDef(pattern, _kind_table(kind), func, name, file, line, sop, step, timeout)
        self._tables[handler.kind].add(_Entry(handler, parsed))
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
        return [Match(e.handler, c) for e, c in self._collect(action, sop, step, kind, True)]

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
            found = [_best(found, text)]
        entry, captures = found[0]
        return Match(entry.handler, captures)

    def _collect(
        self,
        action: Action | str,
        sop: str | None,
        step: int | str | None,
        kind: ActionKind,
        everything: bool,
    ) -> list[tuple[_Entry, dict[str, Any]]]:
        """Candidates for a line. Unless ``everything``, patterned ones are skipped when a
        literal candidate already has a scope no patterned handler can beat (same winner)."""
        if isinstance(action, str):
            text = action
        else:
            text, kind = action.text, action.kind
            if step is None:
                step = action.step
        table = self._tables[_TABLE_OF[kind]]
        cleaned = clean(text)
        folded = cleaned.lower()
        step_key = None if step is None else str(step)
        found: list[tuple[_Entry, dict[str, Any]]] = []
        best_literal = -1
        literals = table.literal.get(folded)
        if literals is not None:
            for entry in literals:
                if (entry.sop is None or entry.sop == sop) and (
                    entry.step is None or entry.step == step_key
                ):
                    found.append((entry, {}))
                    best_literal = max(best_literal, entry.rank)
        if not everything and best_literal >= table.pattern_rank:
            return found  # a literal at this scope wins whatever the patterns say
        words = folded.split(" ")
        buckets = table.buckets
        if buckets:
            key = words[0]
            bucket = buckets.get(key)
            if bucket is not None:
                _try(bucket, cleaned, sop, step_key, found)
            for word in words[1:PREFIX_WORDS]:
                key = key + " " + word
                bucket = buckets.get(key)
                if bucket is not None:
                    _try(bucket, cleaned, sop, step_key, found)
        anchored = table.anchored
        if anchored:
            for word in set(words):
                bucket = anchored.get(word)
                if bucket is not None:
                    _try(bucket, cleaned, sop, step_key, found)
        if table.wild:
            _try(table.wild, cleaned, sop, step_key, found)
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


def _best(found: list[tuple[_Entry, dict[str, Any]]], text: str) -> tuple[_Entry, dict[str, Any]]:
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
