"""Registry: pattern compilation, lookup, specificity, scope, ties, handler loading."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.binding.normalize import clean
from engine.binding.packs import project_packs
from engine.binding.patterns import parse_pattern
from engine.binding.registry import HandlerDef, Match, Registry
from engine.errors import BindingError, HandlerImportError
from engine.model import Action, ActionKind, Level

REPO = Path(__file__).resolve().parents[2]


def _line(text: str, *, kind: ActionKind = ActionKind.ACTION, step: int | None = 1) -> Action:
    return Action(kind=kind, level=Level.MUST, text=text, source=text, line=10, step=step)


# -- reformatting, numbers and words --------------------------------------------------
FORMATS = [
    "* MUST {}",
    "- MUST {}",
    "1. MUST {}",
    "**MUST** {}",
    "MUST `{}`",
    "MUST   {}.",
    "You MUST {}",
]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("text", "captures"),
    [
        ("verify customer_id exists in Stripe", {}),
        ("verify **customer_id** exists in  Stripe", {}),
        ("Verify Customer_ID exists in stripe", {}),
        ("set  appropriate `timeout` (30 seconds)", {"seconds": 30}),
        ("set appropriate **timeout** (30 seconds);", {"seconds": 30}),
    ],
)
def test_reformatted_line_keeps_its_binding(fmt: str, text: str, captures: dict[str, int]) -> None:
    reg = Registry()

    @reg.action("verify customer_id exists in Stripe")
    def verify(ctx: Any) -> None: ...

    @reg.action("set appropriate timeout ({seconds:d} seconds)")
    def timeout(ctx: Any, seconds: int) -> None: ...

    found = reg.match(fmt.format(text))
    assert found is not None
    assert found.handler.func is (timeout if captures else verify)
    assert found.captures == captures


def test_changing_a_number_changes_the_capture_and_a_word_unbinds() -> None:
    reg = Registry()

    @reg.action("set appropriate timeout ({seconds:d} seconds)")
    def timeout(ctx: Any, seconds: int) -> None: ...

    @reg.action("require confirmation for refunds > ${threshold:d}")
    def confirm(ctx: Any, threshold: int) -> None: ...

    assert reg.match("set appropriate timeout (45 seconds)").captures == {"seconds": 45}  # type: ignore[union-attr]
    assert reg.match("require confirmation for refunds > $250").captures == {"threshold": 250}  # type: ignore[union-attr]
    assert reg.match("require confirmation for refunds > $1,000").captures == {"threshold": 1000}  # type: ignore[union-attr]
    assert reg.match("set reasonable timeout (45 seconds)") is None
    assert reg.match("set appropriate timeout (45 minutes)") is None
    assert reg.match("set appropriate timeout (soon seconds)") is None
    assert reg.match("require confirmation for refunds > 100") is None  # the $ is literal


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("retry after {delay:f} seconds", "retry after 1.5 seconds", {"delay": 1.5}),
        ("retry after {delay:f} seconds", "retry after 2 seconds", {"delay": 2.0}),
        ("retry after {delay:f} seconds", "retry after 1,000.25 seconds", {"delay": 1000.25}),
        ("notify {team:w} team", "notify ops_oncall team", {"team": "ops_oncall"}),
        ("refund {pi}", "refund `pi_XYZ789`.", {"pi": "pi_XYZ789"}),
        ("move {a}-{b}", "move x-y", {"a": "x", "b": "y"}),
        ("keep {{literal}} {x:d}", "keep {literal} 3", {"x": 3}),
        ("offset {n:d}", "offset -4", {"n": -4}),
        ("refund pi_{id}", "refund pi_123", {"id": "123"}),  # underscore kept beside a placeholder
        ("**confirm** refunds > ${t:d}.", "confirm refunds > $100", {"t": 100}),
    ],
)
def test_placeholder_types_convert(pattern: str, text: str, expected: dict[str, Any]) -> None:
    assert parse_pattern(pattern).match(text.strip("`.").replace("`", "")) == expected


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("wait {n:d} seconds", "wait 1,00 seconds"),  # commas only as thousands groups
        ("wait {n:d} seconds", "wait 1.5 seconds"),
        ("notify {team:w} team", "notify ops-oncall team"),
        ("refund {pi}", "refund two words"),
    ],
)
def test_placeholder_types_reject(pattern: str, text: str) -> None:
    assert parse_pattern(pattern).match(text) is None


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("do {x:q}", "unknown placeholder type"),
        ("do {1x}", "not a valid placeholder name"),
        ("do {ctx}", "not a valid placeholder name"),
        ("do {x} and {x}", "used twice"),
        ("do {a}{b}", "separated by literal text"),
        ("do {x", "unbalanced"),
        ("do x}", "unbalanced"),
    ],
)
def test_bad_patterns_fail_at_the_decorator(pattern: str, message: str) -> None:
    reg = Registry()
    with pytest.raises(BindingError, match=message):
        reg.action(pattern)


def test_no_catastrophic_backtracking() -> None:
    pattern = parse_pattern("a {x} b {y} c {z:d} d {w:f} e")
    evil = "a " + "x" * 5000 + " b " + "y" * 5000 + " c " + "1" * 5000 + " d " + "9" * 5000 + " f"
    assert pattern.match(evil) is None  # possessive classes: linear (bench/ times it)


# -- specificity, scope, ties ------------------------------------------------------------
def test_literal_beats_patterned_and_specific_beats_general() -> None:
    reg = Registry()

    @reg.action("verify {field} exists in {system}")
    def general(ctx: Any, field: str, system: str) -> None: ...

    @reg.action("verify {field} exists in Stripe")
    def stripe(ctx: Any, field: str) -> None: ...

    @reg.action("verify customer_id exists in Stripe")
    def literal(ctx: Any) -> None: ...

    @reg.action("wait {n} seconds")
    def token(ctx: Any, n: str) -> None: ...

    @reg.action("wait {n:d} seconds")
    def integer(ctx: Any, n: int) -> None: ...

    reg.validate()
    assert reg.match("verify customer_id exists in Stripe").handler.func is literal  # type: ignore[union-attr]
    assert reg.match("verify amount exists in Stripe").handler.func is stripe  # type: ignore[union-attr]
    assert reg.match("verify amount exists in Oracle").handler.func is general  # type: ignore[union-attr]
    assert reg.match("wait 5 seconds").handler.func is integer  # type: ignore[union-attr]
    assert reg.match("wait five seconds").handler.func is token  # type: ignore[union-attr]
    assert len(reg.candidates("verify customer_id exists in Stripe")) == 3


def test_scope_narrowing_step_beats_sop_beats_global() -> None:
    reg = Registry()

    @reg.action("log transaction details")
    def everywhere(ctx: Any) -> None: ...

    @reg.action("log transaction details", sop="payments")
    def in_payments(ctx: Any) -> None: ...

    @reg.action("log {what} details", sop="payments", step=3)
    def in_step3(ctx: Any, what: str) -> None: ...

    reg.validate()
    line = "MUST log transaction details"
    assert reg.match(line).handler.func is everywhere  # type: ignore[union-attr]
    assert reg.match(line, sop="other").handler.func is everywhere  # type: ignore[union-attr]
    assert reg.match(line, sop="payments", step=1).handler.func is in_payments  # type: ignore[union-attr]
    assert reg.match(line, sop="payments", step=3).handler.func is in_step3  # type: ignore[union-attr]
    # an Action carries its own step
    found = reg.match(_line("log transaction details", step=3), sop="payments")
    assert found is not None and found.handler.func is in_step3


def test_kinds_are_separate_and_guards_use_action_handlers() -> None:
    reg = Registry()

    @reg.check("payment status is {status}")
    def status(ctx: Any, status: str) -> bool:
        return True

    @reg.action("validate all input parameters")
    def validate(ctx: Any) -> None: ...

    assert reg.match("payment status is succeeded") is None
    found = reg.match("Payment status is `succeeded`", kind=ActionKind.CHECK)
    assert found is not None and found.captures == {"status": "succeeded"}
    guard = _line("validate all input parameters", kind=ActionKind.GUARD, step=None)
    assert reg.match(guard).handler.func is validate  # type: ignore[union-attr]
    assert reg.match("validate all input parameters", kind=ActionKind.CHECK) is None


def test_identical_patterns_tie_at_validate_naming_both_locations() -> None:
    reg = Registry()

    @reg.action("Send **receipt** to customer.")
    def first(ctx: Any) -> None: ...

    first_line = first.__code__.co_firstlineno

    @reg.action("send receipt to customer")
    def second(ctx: Any) -> None: ...

    second_line = second.__code__.co_firstlineno
    with pytest.raises(BindingError) as err:
        reg.validate()
    message = str(err.value)
    assert f"{__file__}:{first_line}" in message and f"{__file__}:{second_line}" in message
    assert "\n" not in message
    with pytest.raises(BindingError, match="ambiguous"):
        reg.match("send receipt to customer")


def test_equivalent_placeholders_tie_but_different_scopes_do_not() -> None:
    reg = Registry()

    @reg.action("notify {who} now")
    def a(ctx: Any, who: str) -> None: ...

    @reg.action("notify {person} now")
    def b(ctx: Any, person: str) -> None: ...

    with pytest.raises(BindingError, match="ambiguous"):
        reg.validate()

    reg2 = Registry()
    reg2.action("notify {who} now", sop="one")(a)
    reg2.action("notify {who} now", sop="two")(a)
    reg2.validate()
    assert reg2.match("notify bob now", sop="two").handler.sop == "two"  # type: ignore[union-attr]


def test_overlapping_incomparable_patterns_tie_at_load_and_match_time() -> None:
    reg = Registry()

    @reg.action("wait {n:f} seconds")
    def as_float(ctx: Any, n: float) -> None: ...

    @reg.action("wait {n:w} seconds")
    def as_word(ctx: Any, n: str) -> None: ...

    with pytest.raises(BindingError, match=r"as_float .* and .*as_word"):
        reg.validate()  # both match "wait 7 seconds", neither is more specific
    assert reg.match("wait 1.5 seconds").handler.func is as_float  # type: ignore[union-attr]
    assert reg.match("wait soon seconds").handler.func is as_word  # type: ignore[union-attr]
    with pytest.raises(BindingError) as err:
        reg.match("wait 30 seconds")
    assert "as_float" in str(err.value) and "as_word" in str(err.value)


def test_validate_reports_captures_the_function_does_not_accept() -> None:
    reg = Registry()

    @reg.action("charge {amount:d} cents")
    def charge(ctx: Any) -> None: ...

    with pytest.raises(BindingError, match="does not accept amount"):
        reg.validate()


def test_services_and_fixtures_register_once() -> None:
    reg = Registry()

    @reg.service("stripe")
    def stripe(ctx: Any) -> object:
        return object()

    @reg.fixture("cus_")
    def customer(services: Any, symbol: str) -> str:
        return symbol

    assert reg.services() == {"stripe": stripe}
    assert reg.fixtures() == {"cus_": customer}
    with pytest.raises(BindingError, match="defined twice"):
        reg.service("stripe")(customer)


# -- loading handler modules --------------------------------------------------------------
def _project(tmp: Path, handlers: str, config: str = '["hpack.ok"]') -> Path:
    (tmp / "pyproject.toml").write_text(f"[tool.sop]\nhandlers = {config}\n")
    (tmp / "hpack").mkdir()
    (tmp / "hpack" / "__init__.py").write_text("")
    (tmp / "hpack" / "ok.py").write_text(textwrap.dedent(handlers))
    return tmp


def test_project_packs_walk_up_to_pyproject(tmp_path: Path) -> None:
    project = _project(tmp_path, "")
    (project / "sub" / "deeper").mkdir(parents=True)
    modules, root = project_packs(project / "sub" / "deeper")
    assert modules == ["hpack.ok"] and root == project.resolve()


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.sop]\nhandlers = "hpack.ok"\n')
    with pytest.raises(HandlerImportError, match="must be a list"):
        project_packs(tmp_path)


def _load_in_subprocess(project: Path, *modules: str) -> subprocess.CompletedProcess[str]:
    """load_handlers uses the process-wide default registry: isolate it in a subprocess."""
    code = (
        "import sys\n"
        "from engine.binding.packs import load_handlers\n"
        "from engine.errors import SopError\n"
        "try:\n"
        f"    reg = load_handlers({list(modules)!r})\n"
        "except SopError as exc:\n"
        "    print(type(exc).__name__ + ': ' + str(exc)); sys.exit(1)\n"
        "print(sorted(h.name for h in reg.handlers()))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=project, env=env, capture_output=True, text=True
    )


def test_load_handlers_imports_configured_and_extra_modules(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        from engine.binding.registry import action

        @action("do the thing")
        def do_it(ctx):
            pass
        """,
    )
    (project / "extra.py").write_text(
        "from engine.binding.registry import check\n"
        "@check('it is done')\ndef done(ctx):\n    return True\n"
    )
    proc = _load_in_subprocess(project, "extra")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "['extra.done', 'hpack.ok.do_it']" in proc.stdout


def test_import_error_names_module_and_failing_line(tmp_path: Path) -> None:
    project = _project(tmp_path, "import os\n\nx = 1 / 0\n")
    proc = _load_in_subprocess(project)
    assert proc.returncode == 1
    out = proc.stdout.strip()
    assert out.startswith("HandlerImportError: cannot import handler module 'hpack.ok'")
    assert f"{project.resolve() / 'hpack' / 'ok.py'}:3" in out and "ZeroDivisionError" in out
    assert "\n" not in out and "Traceback" not in proc.stderr


def test_missing_module_and_syntax_error_are_one_line(tmp_path: Path) -> None:
    project = _project(tmp_path, "def broken(:\n")
    proc = _load_in_subprocess(project)
    assert "SyntaxError" in proc.stdout and "ok.py:1" in proc.stdout
    proc = _load_in_subprocess(project, "no_such_module")
    assert "cannot import handler module" in proc.stdout


def test_load_time_tie_names_both_handlers(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        from engine.binding.registry import action

        @action("send receipt")
        def one(ctx):
            pass

        @action("Send `receipt`.")
        def two(ctx):
            pass
        """,
    )
    proc = _load_in_subprocess(project)
    assert proc.returncode == 1
    ok_py = project.resolve() / "hpack" / "ok.py"
    assert f"{ok_py}:4" in proc.stdout and f"{ok_py}:8" in proc.stdout


def test_bad_pattern_in_module_names_the_decorator_line(tmp_path: Path) -> None:
    project = _project(
        tmp_path,
        """
        from engine.binding.registry import action

        @action("charge {amount:money}")
        def charge(ctx, amount):
            pass
        """,
    )
    proc = _load_in_subprocess(project)
    assert proc.returncode == 1
    assert "BindingError: handler module 'hpack.ok'" in proc.stdout
    assert "ok.py:4" in proc.stdout and "unknown placeholder type 'money'" in proc.stdout


def test_every_candidate_under_one_key_is_found() -> None:
    reg = Registry()
    funcs = {}
    for index, pattern in enumerate(
        [
            "verify {a} is gone",
            "verify {a} exists in {b}",
            "verify {a} is missing",
            "verify {a} exists in stripe",
            "verify {a:d} exists in {b}",
            "verify {a} left",
        ]
    ):

        def handler(ctx: Any, **kw: Any) -> None: ...

        handler.__qualname__ = f"h{index}"
        funcs[pattern] = reg.action(pattern)(handler)
    names = sorted(m.handler.name[-2:] for m in reg.candidates("verify 42 exists in stripe"))
    assert names == ["h1", "h3", "h4"]
    with pytest.raises(BindingError, match=r"h3 .* and .*h4"):  # incomparable: a true tie
        reg.match("verify 42 exists in stripe")
    assert reg.match("verify x exists in stripe").handler.name.endswith("h3")  # type: ignore[union-attr]
    assert reg.match("verify x exists in oracle").handler.name.endswith("h1")  # type: ignore[union-attr]
    assert reg.match("verify 7 exists in oracle").handler.name.endswith("h4")  # type: ignore[union-attr]
    assert reg.match("verify x is there") is None


# -- lookup index and memo (bench/bench_bind.py measures them) ------------------------------
def _named(reg: Registry, pattern: str, name: str, **scope: Any) -> None:
    def handler(ctx: Any, **kw: Any) -> None: ...

    handler.__qualname__ = name
    reg.action(pattern, **scope)(handler)


def _winner(reg: Registry, line: str, **scope: Any) -> str | None:
    found = reg.match(line, **scope)
    return None if found is None else found.handler.name.rsplit(".", 1)[-1]


def test_memo_is_cleared_by_a_new_registration() -> None:
    reg = Registry()
    _named(reg, "verify {a} exists in {b}", "general")
    assert _winner(reg, "verify x exists in stripe") == "general"
    _named(reg, "verify {a} exists in stripe", "specific")  # same key: the memo must not answer
    assert _winner(reg, "verify x exists in stripe") == "specific"
    _named(reg, "verify x exists in stripe", "literal")
    assert _winner(reg, "verify x exists in stripe") == "literal"
    names = sorted(m.handler.name[-7:] for m in reg.candidates("verify x exists in stripe"))
    assert names == ["general", "literal", "pecific"]


def test_memo_keeps_case_scope_and_returns_fresh_captures() -> None:
    reg = Registry()
    _named(reg, "refund {pi}", "glob")
    _named(reg, "refund {pi}", "step2", step=2)
    first = reg.match("refund pi_ABC")
    assert first is not None and first.captures == {"pi": "pi_ABC"}
    first.captures["pi"] = "tampered"
    assert reg.match("refund pi_ABC").captures == {"pi": "pi_ABC"}  # type: ignore[union-attr]
    assert reg.match("refund pi_abc").captures == {"pi": "pi_abc"}  # type: ignore[union-attr]
    assert _winner(reg, "refund pi_ABC", step=2) == "step2"
    assert _winner(reg, "refund pi_ABC", step="2") == "step2"
    assert _winner(reg, "refund pi_ABC", step=3) == "glob"
    assert _winner(reg, "refund pi_ABC") == "glob"
    listed = reg.candidates("refund pi_ABC", step=2)
    listed[0].captures.clear()
    assert all(m.captures == {"pi": "pi_ABC"} for m in reg.candidates("refund pi_ABC", step=2))


def test_tie_raises_every_time_also_when_the_memo_starts_over() -> None:
    reg = Registry()
    reg.memo_limit = 3
    _named(reg, "send {a} now", "one")
    _named(reg, "send {b} now", "two")
    _named(reg, "send {a} later", "three")
    for _ in range(2):
        with pytest.raises(BindingError, match=r"one .* and .*two"):
            reg.match("send x now")
    for i in range(10):
        assert _winner(reg, f"send x{i} later") == "three"
        assert reg.match(f"send x{i} never") is None
    with pytest.raises(BindingError, match="ambiguous"):
        reg.match("send x now")


def test_word_count_and_literal_words_narrow_but_never_lose_a_candidate() -> None:
    reg = Registry()
    _named(reg, "charge {a} to {b}", "h0")
    _named(reg, "charge {a:d} to stripe", "h1")
    _named(reg, "charge {a} to {b} now", "h2")
    _named(reg, "charge ${a:d} to stripe", "h3")
    _named(reg, "charge {a}", "h4")
    _named(reg, "{a} charge {b} records", "h5")
    _named(reg, "{a}-{b}", "h6")
    got = sorted(m.handler.name[-2:] for m in reg.candidates("charge 5 to stripe"))
    assert got == ["h0", "h1"]
    got = sorted(m.handler.name[-2:] for m in reg.candidates("Charge $5 TO Stripe"))
    assert got == ["h0", "h3"]
    assert sorted(m.handler.name[-2:] for m in reg.candidates("charge 5 to stripe now")) == ["h2"]
    assert sorted(m.handler.name[-2:] for m in reg.candidates("charge 5-6")) == ["h4"]
    assert sorted(m.handler.name[-2:] for m in reg.candidates("x-y")) == ["h6"]
    assert sorted(m.handler.name[-2:] for m in reg.candidates("sys1 charge 5 records")) == ["h5"]
    assert reg.candidates("charge 5 to stripe later now") == []


@pytest.mark.parametrize(
    ("pattern", "line", "captures"),
    [
        # the regex is case-insensitive by Unicode rules, str.lower() is not: long s,
        # Kelvin sign and dotted I match their ASCII letters outside the leading words
        ("verify {a} exists", "verify x exi\u017fts", {"a": "x"}),
        ("verify {a} exi\u017fts", "verify x exists", {"a": "x"}),
        ("verify {a} in \u212aelvin", "verify x in kelvin", {"a": "x"}),
        ("verify {a} in kelvin", "verify x in \u212aelvin", {"a": "x"}),
        ("verify {a} \u0130stanbul", "verify x istanbul", {"a": "x"}),
        ("verify {a} istanbul", "verify x \u0130stanbul", {"a": "x"}),
        ("send {a} now", "SEND X NOW", {"a": "X"}),
        ("send {a} now", "\u017fend x now", None),  # leading words are looked up folded
        ("\u017fend {a} now", "send x now", None),
        ("{a} x \u017fynchronize", "y x synchronize", None),  # so is the anchor word
        ("{a} \u017fync records", "y sync records", {"a": "y"}),
    ],
)
def test_non_ascii_case_folding_binds_as_the_regex_does(
    pattern: str, line: str, captures: dict[str, str] | None
) -> None:
    reg = Registry()

    def handler(ctx: Any, a: str) -> None: ...

    reg.action(pattern)(handler)
    found = reg.match(line)
    assert (None if found is None else found.captures) == captures


_WORDS = [
    "verify",
    "Send",
    "x",
    "to",
    "STRIPE",
    "$5",
    "pi_1",
    "7",
    "1,000",
    "1,000.5",
    "-2",
    "a-b",
    "caf\u00e9",  # non-ASCII, folds as IGNORECASE compares
    "CAF\u00c9",
    "\u017fend",  # long s: IGNORECASE equates it with "s", str.lower() does not
]
_PIECES = [
    *_WORDS,
    "{p}",
    "{n:d}",
    "{f:f}",
    "{w:w}",
    "${m:d}",
    "pi_{q}",
    "{r}-{s}",
    "{t:d},000",
    "{u}\u00e9",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_PIECES), min_size=1, max_size=5), min_size=1, max_size=12),
    st.lists(st.lists(st.sampled_from(_WORDS), min_size=1, max_size=5), min_size=1, max_size=10),
)
def test_candidates_equal_a_brute_force_scan(
    patterns: list[list[str]], lines: list[list[str]]
) -> None:
    """Every candidate the index finds is what each pattern's regex finds, with the
    same captures (except where a line's key words fold differently from the regex:
    see the non-ASCII test above)."""
    reg = Registry()
    parsed = []
    for index, words in enumerate(patterns):
        source = " ".join(words)
        try:
            parsed.append((source, parse_pattern(source)))
        except BindingError:
            continue  # e.g. a placeholder used twice
        reg.add(lambda ctx, **kw: None, source)
        if index == len(patterns) // 2:
            reg.candidates("look up midway")  # later ones must still be found
        for words in lines:
            line = " ".join(words)
            if "\u017f" in line:
                continue  # key words are compared by str.lower(): see the test above
            expected = sorted(
                (s, repr(c))
                for s, p in parsed
                if "\u017f" not in s and (c := p.match(clean(line))) is not None
            )
            for _ in range(2):  # the second time from the memo
                got = sorted(
                    (m.handler.pattern, repr(m.captures))
                    for m in reg.candidates(line)
                    if "\u017f" not in m.handler.pattern
                )
                assert got == expected


def test_candidates_list_shorter_prefixes_first_then_registration_order() -> None:
    reg = Registry()
    _named(reg, "verify pending invoice in {t}", "p4")
    _named(reg, "{a} pending invoice in {t}", "anchored")
    _named(reg, "verify {a} invoice in {t}", "p1")
    _named(reg, "verify pending {a} in {t}", "p2")
    _named(reg, "verify {a} invoice in {b}", "p1b")
    names = [
        m.handler.name.rsplit(".", 1)[-1] for m in reg.candidates("verify pending invoice in x")
    ]
    assert names == ["p1", "p1b", "p2", "p4", "anchored"]
    with pytest.raises(BindingError, match=r"p1 .* and .*p1b"):  # the first two tied, in order
        reg.match("verify x invoice in y")


# -- what a pattern's regex decides ---------------------------------------------------
@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        # the d/f alternation: the grouped branch first, then the plain digits
        ("x {n:d},000 y", "x 1,000 y", {"n": 1}),
        ("x {n:d},000", "x 1,000,000", None),
        ("x {n:f},000", "x 1,000.5,000", {"n": 1000.5}),
        ("{n:d},{m:d}", "1,000", {"n": 1, "m": 0}),
        ("{n:d}5 items", "125 items", None),  # the digits run on into the literal
        # a token stops at the literal character after it, in either case
        ("{a}s", "ABCS", {"a": "ABC"}),
        ("{a}-{b}", "x-y-z", {"a": "x", "b": "y-z"}),  # the first token stops at "-"
        # captures keep their case wherever the word is
        ("{a} x {b} y {c}", "Ab X dE Y fG", {"a": "Ab", "b": "dE", "c": "fG"}),
        ("go {w:w} now", "go Mixed_Case NOW", {"w": "Mixed_Case"}),
        ("refund pi_{id} now", "REFUND PI_AbC now", {"id": "AbC"}),
        # non-ASCII letters: compared as re.IGNORECASE does
        ("go {a} caf\u00e9", "go x CAF\u00c9", {"a": "x"}),
        ("{a}s", "abc\u017f", {"a": "abc"}),
        ("{a}k", "ab\u212a", {"a": "ab"}),
    ],
)
def test_pattern_edge_cases_bind_as_the_regex_says(
    pattern: str, text: str, expected: dict[str, Any] | None
) -> None:
    parsed = parse_pattern(pattern)
    assert parsed.match(text) == expected
    reg = Registry()

    def handler(ctx: Any, **kw: Any) -> None: ...

    reg.action(pattern)(handler)
    found = reg.match(text)
    assert (None if found is None else found.captures) == expected


def test_common_line_shapes_bind_with_their_captures() -> None:
    lines = [
        "verify pending invoice in stripe-42",
        "MUST set payment timeout within 30 seconds",
        "* **MUST** refund `pi_ABC` now.",
        "charge $1,000 to stripe",
        "send receipt to customer",
        "nothing binds this line",
    ]
    reg = Registry()
    for pattern in [
        "verify pending invoice in {target}",
        "set payment timeout within {n:d} seconds",
        "refund {pi} now",
        "charge ${amount:d} to {where}",
        "send receipt to customer",
        "{x} receipt to customer",
    ]:
        reg.action(pattern)(lambda ctx, **kw: None)
    found = [reg.match(line) for line in lines]
    assert [None if m is None else m.captures for m in found] == [
        {"target": "stripe-42"},
        {"n": 30},
        {"pi": "pi_ABC"},
        {"amount": 1000, "where": "stripe"},
        {},
        None,
    ]


def test_handler_defs_and_matches_are_the_dataclasses_they_claim() -> None:
    """HandlerDef and Match are plain frozen dataclasses: equal, printable, immutable."""
    import dataclasses

    reg = Registry()

    def refund(ctx: Any, pi: str) -> None: ...

    handler = reg.add(refund, "refund {pi}", sop="payments", step=2, timeout=3.0)
    made = HandlerDef(
        "refund {pi}",
        ActionKind.ACTION,
        refund,
        handler.name,
        refund.__code__.co_filename,
        refund.__code__.co_firstlineno,
        "payments",
        2,
        3.0,
    )
    assert handler == made and repr(handler) == repr(made)
    assert dataclasses.asdict(handler) == dataclasses.asdict(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        handler.sop = "other"  # type: ignore[misc]
    found = reg.match("refund pi_1", sop="payments", step=2)
    assert found == Match(made, {"pi": "pi_1"}) and repr(found) == repr(Match(made, {"pi": "pi_1"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.captures = {}  # type: ignore[misc]


# -- registration order does not matter ------------------------------------------------------
_SPECS: list[tuple[str, str, dict[str, Any]]] = [
    ("general", "verify {field} exists in {system}", {}),
    ("stripe", "verify {field} exists in Stripe", {}),
    ("literal", "verify customer_id exists in Stripe", {}),
    ("in_sop", "verify {field} exists in Stripe", {"sop": "pay"}),
    ("in_step", "verify {f} exists in {s}", {"step": 2}),
    ("both", "verify customer_id exists in {s}", {"sop": "pay", "step": 3}),
    ("token", "wait {n} seconds", {}),
    ("integer", "wait {n:d} seconds", {}),
    ("number", "wait {n:f} seconds", {}),
    ("anchored", "{who} approves the refund", {}),
    ("unkeyed", "{a}-{b}", {}),
    ("check", "payment status is {status}", {"kind": ActionKind.CHECK}),
    ("tie_one", "send {a} now", {}),
    ("tie_two", "send {b} now", {}),
]
_LINES = [
    "verify customer_id exists in Stripe",
    "- MUST verify amount exists in stripe.",
    "verify amount exists in Oracle",
    "wait 5 seconds",
    "wait 1.5 seconds",
    "wait soon seconds",
    "Bob approves the refund",
    "x-y",
    "payment status is paid",
    "send x now",
    "nothing binds this",
]


def _outcomes(order: list[int]) -> list[tuple[str, ...]]:
    """What every line binds to in every context, with the handlers registered in ``order``."""
    reg = Registry()
    for index in order:
        name, pattern, options = _SPECS[index]
        _named_kind(reg, pattern, name, **options)
    rows: list[tuple[str, ...]] = []
    for line in _LINES:
        for kind in (ActionKind.ACTION, ActionKind.CHECK):
            for sop, step in ((None, None), ("pay", None), ("pay", 2), ("pay", 3), ("x", 2)):
                try:
                    found = reg.match(line, sop=sop, step=step, kind=kind)
                except BindingError:
                    rows.append((line, str(sop), str(step), "tie"))
                    continue
                name = "-" if found is None else found.handler.name.rsplit(".", 1)[-1]
                captures = "" if found is None else repr(sorted(found.captures.items()))
                rows.append((line, str(sop), str(step), name, captures))
    try:
        reg.validate()
        rows.append(("validate", "ok"))
    except BindingError:
        rows.append(("validate", "tie"))
    return rows


def _named_kind(reg: Registry, pattern: str, name: str, **options: Any) -> None:
    def handler(ctx: Any, **kw: Any) -> None: ...

    handler.__qualname__ = name
    reg.add(handler, pattern, **options)


def test_registration_order_does_not_change_any_binding() -> None:
    forward = list(range(len(_SPECS)))
    shuffled = forward[:]
    random.Random(3).shuffle(shuffled)
    expected = _outcomes(forward)
    assert (
        "verify customer_id exists in Stripe",
        "pay",
        "3",
        "both",
        "[('s', 'Stripe')]",
    ) in expected
    assert ("send x now", "None", "None", "tie") in expected
    assert _outcomes(forward[::-1]) == expected
    assert _outcomes(shuffled) == expected


_PACK_A = """
from engine import action


@action("refund {pi}")
def refund_any(ctx, pi): ...


@action("refund {pi:w}", sop="refunds")
def refund_word(ctx, pi): ...
"""
_PACK_B = """
from engine import action


@action("refund pi_{pi}")
def refund_pi(ctx, pi): ...


@action("refund pi_latest")
def refund_latest(ctx): ...
"""
_BIND = """
import sys
from engine.binding.packs import load_handlers
reg = load_handlers(sys.argv[1:])
for sop in (None, "refunds"):
    for line in ("refund pi_1", "MUST refund pi_latest", "refund ch-9", "refund x y"):
        found = reg.match(line, sop=sop)
        print(sop, line, found and found.handler.name, found and found.captures)
"""


def test_packs_loaded_in_either_order_bind_identically(tmp_path: Path) -> None:
    """The module-level decorators fill one default registry as modules import: the
    winner follows scope and specificity, never which pack came first."""
    (tmp_path / "pack_a.py").write_text(_PACK_A)
    (tmp_path / "pack_b.py").write_text(_PACK_B)
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def bind(*modules: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", _BIND, *modules],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    first = bind("pack_a", "pack_b")
    assert "None refund pi_1 pack_b.refund_pi {'pi': '1'}" in first
    assert "refunds refund pi_1 pack_a.refund_word {'pi': 'pi_1'}" in first
    assert "MUST refund pi_latest pack_b.refund_latest {}" in first
    assert bind("pack_b", "pack_a") == first


def test_remembered_values_last_until_the_next_registration() -> None:
    """``remember`` keeps what a caller derived from the bindings (the planner's plans)
    exactly as long as the bindings it came from; a failure is not remembered."""
    reg = Registry()
    computed: list[str] = []

    def derive() -> str:
        computed.append("x")
        return _winner(reg, "refund pi_1") or "unbound"

    assert reg.remember("k", derive) == "unbound"
    assert reg.remember("k", derive) == "unbound" and len(computed) == 1
    _named(reg, "refund {pi}", "refund")
    assert reg.remember("k", derive) == "refund" and len(computed) == 2

    def broken() -> str:
        raise BindingError("tie")

    for _ in range(2):
        with pytest.raises(BindingError):
            reg.remember("t", broken)
    reg.remember_limit = 2
    for key in ("a", "b", "c"):
        reg.remember(key, derive)
    assert reg.remember("k", derive) == "refund" and len(computed) == 6  # started over
