"""Example symbols (``cus_ABC123``) and the static check on them that lint reports.

A symbol stands for an id an earlier example produced; the examples runner
(``engine.testing.examples``) replaces it at run time, lint checks statically that the
examples ask only what their symbols can give (SOP135). Kept in the language package so
lint needs nothing from the runner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from engine.model import Diagnostic, Severity, Sop

SYMBOL = re.compile(r"^(?P<prefix>[a-z][a-z0-9]*_)(?P<name>[A-Z0-9][A-Z0-9_]*)$")
#: Lint code for an example that asks for more than the example that produced its symbol.
CODE_EXCEEDS = "SOP135"


def is_symbol(value: Any) -> bool:
    """``cus_ABC123`` is a symbol; ``cus_d11vLwtJEuuqUx`` (a real id) and ``usd`` are not."""
    return (
        isinstance(value, str)
        and SYMBOL.match(value) is not None
        and any(c.isalpha() for c in value.split("_", 1)[1])
    )


def symbols_in(value: Any) -> list[str]:
    if is_symbol(value):
        return [value]
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in symbols_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in symbols_in(v)]
    return []


def _amount(data: Mapping[str, Any]) -> int | float | None:
    value = data.get("amount")
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def example_diagnostics(sop: Sop) -> list[Diagnostic]:
    """SOP135: an example asks for a larger ``amount`` than the example that produced its symbol.

    E.g. Example 1 charges 2500 and its output yields ``pi_XYZ789``; Example 2 refunds
    15000 of ``pi_XYZ789``: as written the second example can only fail once confirmed.
    """
    produced: dict[str, tuple[int, str, int | float]] = {}  # symbol -> (example, title, amount)
    seen: set[str] = set()
    found: list[Diagnostic] = []
    for index, example in enumerate(sop.examples, start=1):
        inputs = symbols_in(example.input)
        asked = _amount(example.input)
        for symbol in dict.fromkeys(inputs):
            origin = produced.get(symbol)
            if origin is not None and asked is not None and asked > origin[2]:
                line = example.key_lines.get("amount", example.input_line or example.line)
                found.append(
                    Diagnostic(
                        CODE_EXCEEDS,
                        Severity.WARNING,
                        f"example {index} ({example.title}) asks for amount {asked} of "
                        f"{symbol}, but example {origin[0]} ({origin[1]}) that produced "
                        f"{symbol} has amount {origin[2]}; lower the amount or say in the "
                        "example why it must fail",
                        line,
                        1,
                        sop.path,
                    )
                )
        seen.update(inputs)
        own = _amount(example.input)
        if own is None:
            own = _amount(example.expected)
        for symbol in symbols_in(example.expected):
            if symbol not in seen and symbol not in produced and own is not None:
                produced[symbol] = (index, example.title, own)
        seen.update(symbols_in(example.expected))
    return found
