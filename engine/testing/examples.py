"""Run an SOP's Examples as tests: symbols, fixtures, subset comparison, unified diffs.

Examples run in order, each as a real run. Identifiers written like ``cus_ABC123``
or ``pi_XYZ789`` (a lower-case prefix, ``_``, then upper case letters and digits)
are *symbols*, not real ids:

- a symbol in an **expected output** binds to the value the run actually produced
  at that place (the first time; afterwards it must equal its bound value);
- a symbol in an **input** is replaced by its bound value; a symbol not yet bound
  is provisioned by the fixture a handler pack registered for its prefix
  (``Registry.fixture("cus_")``: ``factory(services, symbol) -> real id``; a factory
  that also accepts ``bound=`` receives the symbols bound so far).

The expected output is compared as a **subset** of the actual output: every key the
example shows must be present with an equal value (mappings recursively, lists
element by element and of equal length); keys the example does not show are not
compared, so an SOP may return more than its Examples document. A mismatch is shown
as a unified diff of the expected fields against the actual ones.

Nothing here knows about any payment system: prefixes, fixtures and services all
come from the registry. A handler pack may register a service named ``sandbox``
whose factory returns a context manager yielding environment variables; examples
then run inside it (set ``SOP_TEST_SANDBOX=0`` to use the environment as it is).
"""

from __future__ import annotations

import contextlib
import difflib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.errors import SopError
from engine.execution.redact import redact
from engine.language.example_symbols import is_symbol, symbols_in
from engine.model import Sop
from engine.testing import expect

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.storage.base import Store

SANDBOX_SERVICE = "sandbox"
_MISSING = object()


@dataclass
class ExampleResult:
    """One example's outcome; ``diff`` is a unified diff when the output did not match."""

    sop: str
    index: int
    title: str
    line: int
    passed: bool
    documentation: bool = False  # a prose example: shown to the reader, not run
    run_id: str | None = None
    status: str | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    actual: dict[str, Any] = field(default_factory=dict)
    diff: str = ""
    problems: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.sop} example {self.index}: {self.title}"

    def report(self) -> str:
        """Multi-line text for a person: what failed and the diff."""
        if self.documentation:
            return f"DOC  {self.label} (line {self.line}): documentation, no Input YAML to run"
        head = f"{'PASS' if self.passed else 'FAIL'} {self.label} (line {self.line})"
        if self.run_id:
            head += f" run {self.run_id} {self.status}"
        lines = [head]
        lines += [f"  {p}" for p in self.problems]
        lines += [f"  run error: {e}" for e in self.errors]
        if self.diff:
            lines += ["  " + d for d in self.diff.rstrip("\n").splitlines()]
        return "\n".join(lines)


class Bindings:
    """Symbol -> real value, shared by the examples of one SOP (in order)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def resolve(self, value: Any) -> Any:
        """``value`` with every bound symbol replaced (unbound symbols left as written)."""
        if is_symbol(value):
            return self.values.get(value, value)
        if isinstance(value, Mapping):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


def _fixture_for(
    symbol: str, fixtures: Mapping[str, Callable[..., Any]]
) -> Callable[..., Any] | None:
    best = max((p for p in fixtures if symbol.startswith(p)), key=len, default=None)
    return fixtures[best] if best is not None else None


def _call_fixture(
    factory: Callable[..., Any], services: Mapping[str, Any], symbol: str, bound: Mapping[str, Any]
) -> Any:
    try:
        accepts_bound = "bound" in inspect.signature(factory).parameters or any(
            p.kind is inspect.Parameter.VAR_KEYWORD
            for p in inspect.signature(factory).parameters.values()
        )
    except (TypeError, ValueError):
        accepts_bound = False
    if accepts_bound:
        return factory(services, symbol, bound=dict(bound))
    return factory(services, symbol)


def provision(
    value: Any,
    bindings: Bindings,
    fixtures: Mapping[str, Callable[..., Any]],
    services: Mapping[str, Any],
) -> Any:
    """Bind every unbound input symbol through its fixture, then resolve ``value``."""
    for symbol in dict.fromkeys(symbols_in(value)):
        if symbol in bindings.values:
            continue
        factory = _fixture_for(symbol, fixtures)
        if factory is None:
            known = ", ".join(sorted(fixtures)) or "none"
            raise SopError(
                f"input symbol {symbol!r} is not bound by an earlier example and no fixture "
                f"provides its prefix (registered fixtures: {known})"
            )
        bindings.values[symbol] = _call_fixture(factory, services, symbol, bindings.values)
    return bindings.resolve(value)


def compare(expected: Any, actual: Any, bindings: Bindings, path: str = "") -> list[str]:
    """Subset comparison; binds output symbols on first sight. One line per mismatch."""
    where = path or "output"
    if is_symbol(expected):
        if expected in bindings.values:
            expected = bindings.values[expected]
        elif actual is _MISSING or actual is None:
            return [f"{where}: missing (expected a value for symbol {expected})"]
        else:
            bindings.values[expected] = actual
            return []
    if actual is _MISSING:
        return [f"{where}: missing (expected {expected!r})"]
    if isinstance(expected, Mapping):
        if not isinstance(actual, Mapping):
            return [f"{where}: expected a mapping, got {actual!r}"]
        found: list[str] = []
        for key, value in expected.items():
            sub = f"{path}.{key}" if path else str(key)
            found += compare(value, actual.get(key, _MISSING), bindings, sub)
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in compare(e, a, bindings, f"{where}[{i}]")
        ]
    if isinstance(expected, bool) or isinstance(actual, bool):
        same = expected is actual
    else:
        same = expected == actual
    return [] if same else [f"{where}: expected {expected!r}, got {actual!r}"]


def _project(expected: Any, actual: Any) -> Any:
    """``actual`` restricted to the keys ``expected`` shows (for a readable diff)."""
    if isinstance(expected, Mapping) and isinstance(actual, Mapping):
        return {k: _project(v, actual[k]) for k, v in expected.items() if k in actual}
    return actual


def unified_diff(expected: Any, actual: Any, label: str) -> str:
    import yaml

    left = yaml.safe_dump(expected, sort_keys=False, default_flow_style=False, allow_unicode=True)
    right = yaml.safe_dump(
        _project(expected, actual), sort_keys=False, default_flow_style=False, allow_unicode=True
    )
    return "".join(
        difflib.unified_diff(
            left.splitlines(keepends=True),
            right.splitlines(keepends=True),
            fromfile=f"{label} (expected)",
            tofile=f"{label} (actual)",
        )
    )


@contextlib.contextmanager
def environment(registry: Registry) -> Iterator[None]:
    """Inside the handler pack's ``sandbox`` service, if it registered one (and it is wanted)."""
    factory = registry.services().get(SANDBOX_SERVICE)
    if factory is None or os.environ.get("SOP_TEST_SANDBOX", "1").strip() in ("0", "false", "no"):
        yield
        return
    with factory(None) as env:
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update({k: str(v) for k, v in env.items()})
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def run_examples(
    sop: Sop,
    *,
    registry: Registry | None = None,
    journal: Store | None = None,
    select: str | None = None,
    exitfirst: bool = False,
) -> list[ExampleResult]:
    """Run every example of ``sop`` in order (symbols carry over); never raises for one example.

    ``select``: only the examples whose label (``NAME example N: Title``) contains it, case
    ignored, as ``pytest -k`` with a plain word; ``exitfirst``: stop after the first failure.
    """
    from engine.binding.registry import default_registry
    from engine.execution.context import Services
    from engine.execution.runner import run

    reg = registry if registry is not None else default_registry
    bindings = Bindings()
    fixtures = reg.fixtures()
    results: list[ExampleResult] = []
    for index, example in enumerate(sop.examples, start=1):
        if results and exitfirst and not results[-1].passed:
            break
        result = ExampleResult(
            sop.name, index, example.title, example.line, False, expected=dict(example.expected)
        )
        if select is not None and select.casefold() not in result.label.casefold():
            continue
        if example.documentation:
            result.passed = result.documentation = True
            results.append(result)
            continue
        services = Services(None, reg.services())
        services.bind(_FixtureContext(sop))  # type: ignore[arg-type]
        try:
            params = provision(dict(example.input), bindings, fixtures, services)
            outcome = run(sop, params, registry=reg, journal=journal)
        except SopError as exc:
            result.problems.append(f"could not run: {exc}")
            results.append(result)
            continue
        result.run_id = outcome.run_id
        result.status = getattr(outcome.status, "value", str(outcome.status))
        result.actual = redact(dict(outcome.output))
        result.errors = list(outcome.errors)
        want = expect.split(example.expected, result.actual)
        causes = [a.cause for a in outcome.actions if a.cause]
        result.problems = expect.problems(want, result.status, result.errors, causes)
        mismatched = compare(want.output, result.actual, bindings)
        result.problems += mismatched
        result.passed = not result.problems
        if mismatched:
            result.diff = unified_diff(bindings.resolve(want.output), result.actual, result.label)
        results.append(result)
    return results


class _FixtureContext:
    """What a service factory sees when fixtures (not a run) ask for a service."""

    def __init__(self, sop: Sop) -> None:
        self.sop = sop
        self.run_id = "examples"
        self.params: dict[str, Any] = {}


class SopExamplesError(Exception):
    """Raised by an example item; its text is the example's report (with the diff)."""


def pytest_items(session: Any, sops: list[Sop], registry: Registry) -> list[Any]:
    """One pytest item per example (``pytest --sop-examples``), run per SOP in order.

    The first item of an SOP runs all of that SOP's examples (symbols carry over, as
    in ``sop test``) inside the handler pack's sandbox environment; every item then
    reports its own example. Wired in by ``engine.testing.pytest_plugin``.
    """
    import pytest

    if not session.config.getoption("sop_examples", default=False):
        return []
    cache: dict[str, list[ExampleResult]] = {}
    stack = contextlib.ExitStack()
    session.config.add_cleanup(stack.close)

    def results_of(sop: Sop) -> list[ExampleResult]:
        if sop.name not in cache:
            if not cache:
                stack.enter_context(environment(registry))
            cache[sop.name] = run_examples(sop, registry=registry)
        return cache[sop.name]

    class SopExampleItem(pytest.Item):
        def __init__(self, *, sop: Sop, index: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.sop, self.index = sop, index

        def runtest(self) -> None:
            result = results_of(self.sop)[self.index - 1]
            if not result.passed:
                raise SopExamplesError(result.report())

        def repr_failure(self, excinfo: Any, style: Any = None) -> str:
            if isinstance(excinfo.value, SopExamplesError):
                return str(excinfo.value)
            return str(super().repr_failure(excinfo))

        def reportinfo(self) -> tuple[str, int, str]:
            example = self.sop.examples[self.index - 1]
            return self.sop.path or self.sop.name, example.line - 1, f"sop example: {self.name}"

    return [
        SopExampleItem.from_parent(session, name=f"sop-example[{sop.name}:{i}]", sop=sop, index=i)
        for sop in sops
        for i in range(1, len(sop.examples) + 1)
    ]


__all__ = [
    "Bindings",
    "ExampleResult",
    "compare",
    "environment",
    "is_symbol",
    "provision",
    "pytest_items",
    "run_examples",
    "unified_diff",
]
