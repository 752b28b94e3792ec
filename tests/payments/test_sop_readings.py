"""Numbers and rules the payments pack reads from the SOP's text, per SOP.

The pack keeps what it reads (the timeout line, the retry rules) with the immutable
Sop, so each SOP is read once; these tests prove that two SOPs saying different things
get different answers, and that the answers are the text's.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.errors import SopFailure
from engine.language.catalog import load
from engine.language.parser import parse
from engine.model import Sop
from handlers.payments.charges import never_retry_payment_failures
from handlers.payments.common import amount_bounds
from handlers.payments.stripe_api import sop_timeout

SEED = Path(__file__).resolve().parents[2] / "sops" / "payment-processing.sop.md"


def _variant(tmp_path: Path, *edits: tuple[str, str]) -> Sop:
    """The seed SOP with ``edits`` applied, under a name of its own (no overlay)."""
    text = SEED.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "tight-payments.sop.md"
    path.write_text(text, encoding="utf-8")
    return parse(path.read_bytes(), path=str(path))


def _ctx(sop: Sop, step: int | None = None) -> SimpleNamespace:
    return SimpleNamespace(sop=sop, action=SimpleNamespace(step=step))


def test_timeout_and_amount_limits_are_each_sops_own(tmp_path: Path) -> None:
    seed = load("payment-processing")
    tight = _variant(
        tmp_path,
        ("set appropriate timeout (30 seconds)", "set appropriate timeout (12 seconds)"),
        ("Must be positive, max 99999999", "Must be positive, max 5000"),
    )
    for _ in range(2):  # a second reading gives the same answers
        assert sop_timeout(seed) == 30.0 and sop_timeout(tight) == 12.0
        assert amount_bounds(_ctx(seed)) == (1, 99999999)  # type: ignore[arg-type]
        assert amount_bounds(_ctx(tight)) == (1, 5000)  # type: ignore[arg-type]


def test_an_sop_that_retries_payment_failures_is_refused_and_the_seed_is_not(
    tmp_path: Path,
) -> None:
    seed = load("payment-processing")
    step = next(s.number for s in seed.steps if any("retry payment" in a.text for a in s.actions))
    retrying = _variant(
        tmp_path,
        (
            "If payment fails: Log error, return failure details",
            "If payment fails: Retry with exponential backoff (max 3 retries)",
        ),
    )
    for _ in range(2):
        never_retry_payment_failures(_ctx(seed, step))  # type: ignore[arg-type]
        with pytest.raises(SopFailure, match="would retry payment failures: payment fails"):
            never_retry_payment_failures(_ctx(retrying, step))  # type: ignore[arg-type]
