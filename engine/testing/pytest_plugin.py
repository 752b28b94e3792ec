"""pytest plugin (entry point ``pytest11: sop``): SOP checks as ordinary test items.

``pytest --sop-coverage`` adds one item per catalog SOP that fails listing every
unbound MUST line as ``path:line``. Further kinds of SOP items (e.g. Examples)
plug in by adding a factory to ``ITEM_FACTORIES``; each gets the session and the
loaded SOPs and returns items. Nothing is imported unless an SOP option is given,
so plain pytest runs pay nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from engine.binding.registry import Registry
    from engine.model import Sop


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sop", "sop-engine")
    group.addoption(
        "--sop-coverage",
        action="store_true",
        default=False,
        help="add one test per SOP that fails when a MUST line has no handler",
    )
    group.addoption(
        "--sop-examples",
        action="store_true",
        default=False,
        help="add one test per SOP Example (run in order, as `sop test` does)",
    )
    group.addoption(
        "--sop-handlers",
        action="append",
        default=[],
        metavar="MODULE",
        help="handler module to import besides [tool.sop] handlers (repeatable)",
    )
    group.addoption(
        "--sop",
        action="append",
        default=[],
        metavar="NAME",
        help="limit SOP items to these SOPs (default: every SOP the catalog finds)",
    )


class SopCoverageError(Exception):
    """Raised by a coverage item; its lines are the report."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        super().__init__("\n".join(lines))


class SopCoverageItem(pytest.Item):
    """Fails when any required line of one SOP is unbound."""

    def __init__(self, *, sop: Sop, registry: Registry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sop = sop
        self.registry = registry
        self.add_marker("sop_coverage")

    def runtest(self) -> None:
        from engine.binding.coverage import sop_coverage

        failures = sop_coverage(self.sop, self.registry).failures()
        if failures:
            head = f"{self.sop.name}: {len(failures)} required line(s) unbound"
            lines = [
                head,
                *(f"  {f.label()}" + (f" ({f.error})" if f.error else "") for f in failures),
            ]
            raise SopCoverageError(lines)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SopCoverageError):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path | str, int | None, str]:
        return self.sop.path or self.sop.name, 0, f"sop coverage: {self.sop.name}"


ItemFactory = Callable[[pytest.Session, "list[Sop]", "Registry"], Iterable[pytest.Item]]


def coverage_items(
    session: pytest.Session, sops: list[Sop], registry: Registry
) -> Iterable[pytest.Item]:
    if not session.config.getoption("sop_coverage"):
        return []
    return [
        SopCoverageItem.from_parent(
            session, name=f"sop-coverage[{sop.name}]", sop=sop, registry=registry
        )
        for sop in sops
    ]


def example_items(
    session: pytest.Session, sops: list[Sop], registry: Registry
) -> Iterable[pytest.Item]:
    from engine.testing.examples import pytest_items

    items: list[pytest.Item] = pytest_items(session, sops, registry)
    return items


#: Each factory adds its kind of SOP item; a later kind (Examples) appends here.
ITEM_FACTORIES: list[ItemFactory] = [coverage_items, example_items]
#: Options that switch SOP collection on (a new kind adds its option here).
ACTIVATING_OPTIONS: list[str] = ["sop_coverage", "sop_examples"]


def _active(config: pytest.Config) -> bool:
    return any(config.getoption(name, default=False) for name in ACTIVATING_OPTIONS)


def _sops(config: pytest.Config) -> list[Sop]:
    from engine.language.catalog import entries, load

    names = list(config.getoption("sop")) or [e.name for e in entries()]
    return [load(name) for name in names]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sop_coverage: SOP/handler coverage item (sop-engine)")


@pytest.hookimpl(tryfirst=True)  # before -k / -m deselection, so those filter SOP items too
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    if not _active(config):
        return
    from engine.binding.packs import load_handlers
    from engine.errors import SopError

    try:
        sops = _sops(config)
        registry = load_handlers(
            config.getoption("sop_handlers"),
            project_dir=Path(str(config.rootpath)),
            sops=[sop.name for sop in sops],
        )
    except SopError as exc:
        raise pytest.UsageError(f"sop: {exc}") from None
    for factory in ITEM_FACTORIES:
        items.extend(factory(session, sops, registry))
