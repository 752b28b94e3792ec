"""What a run journals is canonical, redacted JSON, and its last event is the result.

Event bodies are scanned as text before anything is redacted object by object
(``engine.canonical``): these tests hold them to ``canonical({**redact(data), **raw})``
and to ``RunResult.to_dict``, with real runs, a real SQLite journal and real redaction.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.binding.registry import Registry
from engine.canonical import body, canonical, redacted_json
from engine.errors import ConfirmationRequired, NotApplicable, OutcomeUnknown, SopFailure
from engine.execution.context import KEY_NAMESPACE, idempotency_key
from engine.execution.redact import flat_clean, may_need_redaction, redact
from engine.execution.runner import RunResult, RunStatus, run
from engine.language.parser import parse
from engine.storage.journal import Journal

CARD = "4242424242424242"

TRICKY_KEYS = [
    "n",
    "amount",
    "cvv",
    "CVC2",
    "c-v-v",
    "Card Code",
    "security_code",
    "cid",
    "api_key",
    "apiKey",
    "api\u212aey",  # KELVIN SIGN lowers to "k"
    "pass\u00e9word",  # a non-ASCII letter is dropped when key names are normalized
    "secret",
    "Authorization",
    "x\ny",
    'quote"d',
    "caf\u00e9",
    "ref",
    "card[cvc]",
    "cardCvc",
    "cvv_number",
    "Card Verification Value",
    "csc",
    "cvc_check",
]
TRICKY_TEXT = [
    "",
    "ok",
    CARD,
    "4242 4242 4242 4242",
    "4242-4242-4242-4242",
    f"ref00{CARD}",
    "cvv: 123",
    "CVC 4567",
    "sk_test_abcdef",
    "rk_live_XYZ",
    "whsec_123",
    "1234567890123",
    "succeeded",
    "caf\u00e9 cvv 999",
    "tab\there",
    '{"cvc": "987", "number": "4242424242424242"}',
    '{"cvc":987}',
    "card verification value 1234",
    "security code 321",
    "CVV is 246",
    "card%5Bcvc%5D=135",
    "0b5c5be8-1d0e-4b7b-9c1e-4242424242424242",
    "42424242-4242-4242-4242-000000000000:payment_intent",
]

json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.sampled_from([0.0, -0.0, 0.012, 1.5, 1e300, 12345678901234.0, 4242424242424242.0]),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
    st.floats(allow_nan=False),
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=20),
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(TRICKY_KEYS) | st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)


def reference_body(data: dict[str, Any] | None, raw: dict[str, Any] | None) -> str:
    """What the journal wrote before the fast path (for JSON-native data)."""
    out = dict(redact(data)) if data else {}
    if raw:
        out.update(raw)
    return canonical(out)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(TRICKY_KEYS) | st.text(max_size=8), json_value))
def test_body_is_redact_then_canonical(data: dict[str, Any]) -> None:
    raw = {"result": {"status": "passed", "attempts": 1}}
    assert body(data, raw) == reference_body(data, raw)
    assert body(data, None) == reference_body(data, None)
    assert redacted_json(data) == canonical(redact(data))


@settings(max_examples=200, deadline=None)
@given(json_value)
def test_scan_flags_everything_redact_would_change(value: Any) -> None:
    if canonical(redact(value)) != canonical(value):  # (NaN != NaN: compare what is written)
        assert may_need_redaction(json.dumps(value, ensure_ascii=False))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(TRICKY_KEYS) | st.text(max_size=8), json_leaf))
def test_flat_clean_only_when_redact_changes_nothing(data: dict[str, Any]) -> None:
    if flat_clean(data):
        assert canonical(redact(data)) == canonical(data)
    if canonical(redact(data)) != canonical(data):
        assert not flat_clean(data)
    assert redacted_json(data) == canonical(redact(data))


@pytest.mark.parametrize("key", [k for k in TRICKY_KEYS if redact({k: 1}) != {k: 1}])
def test_sensitive_key_spellings_are_flagged(key: str) -> None:
    assert may_need_redaction(json.dumps({key: 1}, ensure_ascii=False)), key
    assert body({"state": {key: "123"}}, None) == reference_body({"state": {key: "123"}}, None)


@pytest.mark.parametrize("text", [t for t in TRICKY_TEXT if redact(t) != t])
def test_sensitive_strings_are_masked_in_bodies(text: str) -> None:
    stored = body({"output": {"note": text}}, {"result": {"status": "passed"}})
    assert stored == reference_body({"output": {"note": text}}, {"result": {"status": "passed"}})
    assert text not in stored


def test_non_json_values_are_written_redacted() -> None:
    class Card:
        def __str__(self) -> str:
            return f"card {CARD}"

    stored = body({"state": {"card": Card()}}, None)
    assert CARD not in stored
    assert json.loads(stored) == {"state": {"card": "card 424242******4242"}}


SOP_TEXT = """\
# Fast Path

**Version**: 1.0.0

## Overview

A procedure for the fast-path tests.

## Parameters

- **mode** (string): What the handlers do
  - Values: `pass` | `fail` | `pause` | `unknown`

## Steps

### 1. Work

**Actions**:
- MUST store the card
- SHOULD note the card
- MAY skip this one
- MUST ask for approval

### 2. Finish

**Actions**:
- MUST write the receipt
"""


def _registry() -> Registry:
    registry = Registry()

    @registry.action("store the card")
    def store(ctx: Any) -> None:
        ctx.state["card"] = f"card {CARD}"  # redacted in the journal
        ctx.state["count"] = 1
        ctx.output["quote"] = 'say "hi"\n'  # escapes: the slow path

    @registry.action("note the card")
    def note(ctx: Any) -> None:
        ctx.output["last4"] = "4242"
        del ctx.state["count"]  # a removed key

    @registry.action("skip this one")
    def skip(ctx: Any) -> None:
        raise NotApplicable(f"not for {CARD}")

    @registry.action("ask for approval")
    def ask(ctx: Any) -> None:
        mode = ctx.params["mode"]
        if mode == "fail":
            raise SopFailure("Customer not found", message=f"no customer for {CARD}")
        if mode == "unknown":  # a cause and a traceback in the journal, both redacted
            raise OutcomeUnknown("no answer", f"lost the answer for {CARD}", retryable=False)
        if mode == "pause" and not ctx.confirmed:
            raise ConfirmationRequired(
                f"approve {CARD}", {"amount": 5000, "card": CARD}, {"requires_confirmation": True}
            )

    @registry.action("write the receipt")
    def receipt(ctx: Any) -> None:
        ctx.output["receipt"] = "r-1"

    return registry


def _rows(path: Path, run_id: str) -> list[tuple[str, str]]:
    db = sqlite3.connect(path)
    try:
        return list(
            db.execute("SELECT type, data FROM events WHERE run_id=? ORDER BY seq", (run_id,))
        )
    finally:
        db.close()


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("pass", RunStatus.SUCCEEDED),
        ("fail", RunStatus.FAILED),
        ("pause", RunStatus.PAUSED),
        ("unknown", RunStatus.UNKNOWN),
    ],
)
def test_journaled_events_are_canonical_redacted_and_match_the_result(
    tmp_path: Path, mode: str, status: RunStatus
) -> None:
    sop = parse(SOP_TEXT, path=str(tmp_path / "fast-path.sop.md"))
    path = tmp_path / "journal.db"
    with Journal(path) as journal:
        result = run(sop, {"mode": mode}, registry=_registry(), journal=journal)
        assert result.status is status, result.errors
        assert journal.verify() == []
    rows = _rows(path, result.run_id)
    assert rows, "nothing journaled"
    for type_, text in rows:
        assert canonical(json.loads(text)) == text, (type_, text)  # sorted, compact
        assert CARD not in text, (type_, text)
    final = json.loads(rows[-1][1])["result"]
    expected: dict[str, Any] = RunResult.to_dict(result, validate=False)
    if expected["pending"] is not None:
        expected["pending"]["token"] = None
    assert rows[-1][1] == canonical({"result": expected})
    assert final["status"] == status.value
    finished = [json.loads(t) for ty, t in rows if ty == "action_finished"]
    if mode in ("fail", "unknown"):  # the cause in the result, the traceback beside it
        (failed,) = [f for f in finished if f["result"].get("cause")]
        assert failed["result"]["cause"]["where"].endswith(" in ask")
        assert "Traceback (most recent call last)" in failed["traceback"]
    assert {"card": "card 424242******4242", "count": 1} in [f.get("state") for f in finished]
    assert ["count"] in [f.get("state_removed") for f in finished]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=10))
def test_idempotency_key_is_uuid5(run_id: str, action_id: str, suffix: str) -> None:
    name = f"{run_id}\x1f{action_id}\x1f{suffix}"
    try:
        name.encode()
    except UnicodeEncodeError:
        return  # lone surrogates: not an id the engine makes
    assert idempotency_key(run_id, action_id, suffix) == str(uuid.uuid5(KEY_NAMESPACE, name))


PLAN_SOP = """\
# Plan Cache

## Overview

Plans are cached per branch selection.

## Parameters

- **operation** (string): What to do
  - Values: `charge` | `refund`

## Steps

### 1. Do

**Actions**:
- MUST verify customer exists

**For Charges**:
- MUST capture the charge

**For Refunds**:
- MUST refund the charge
"""


def test_cached_plans_follow_params_and_registrations() -> None:
    """plan() caches bindings per (SOP, registry): branches still follow the parameters,
    a handler registered later is seen, and a tie still raises on every call."""
    from engine.binding.planner import bind_line, plan
    from engine.errors import BindingError

    sop = parse(PLAN_SOP.encode(), path="cache.sop.md")
    reg = Registry()
    reg.action("verify customer exists")(lambda ctx: None)
    reg.action("capture the charge")(lambda ctx: None)

    def fresh(params: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
        """What planning without any cache gives (bind_line per line, as before)."""
        first = plan(sop, params, registry=reg)
        rows = []
        for b in first.bindings:
            ref = bind_line(b.action, sop, reg, b.reason if b.status == "off_path" else None)
            name = ref.match.handler.name if ref.match else None
            assert (b.status, b.reason) == (ref.status, ref.reason)
            rows.append((b.status, b.reason, name))
        return rows

    charge = fresh({"operation": "charge"})
    assert [r[0] for r in charge] == ["bound", "bound", "off_path"]
    refund = fresh({"operation": "refund"})
    assert [r[0] for r in refund] == ["bound", "off_path", "unbound"]
    assert not plan(sop, {"operation": "refund"}, registry=reg).ok
    assert fresh({"operation": "charge"}) == charge  # the cached plan, same answer

    reg.action("refund the charge")(lambda ctx: None)  # a new handler: the cache is dropped
    now = plan(sop, {"operation": "refund"}, registry=reg)
    assert now.ok and [b.status for b in now.bindings] == ["bound", "off_path", "bound"]

    reg.action("verify {who} exists")(lambda ctx, who: None)  # literal still wins
    literal = plan(sop, {"operation": "charge"}, registry=reg).bindings[0].match
    assert literal is not None and literal.captures == {}
    tie = Registry()
    tie.action("verify {a} exists")(lambda ctx, a: None)
    tie.action("verify {b} exists")(lambda ctx, b: None)
    for _ in range(2):  # not cached away after the first failure
        with pytest.raises(BindingError):
            plan(sop, {"operation": "charge"}, registry=tie)
