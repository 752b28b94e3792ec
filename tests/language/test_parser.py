"""The parser reads the seed completely, with exact source lines, and never raises on bad input.

Every line number pinned here was taken from the file with grep/awk, not from the parser.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.language.parser import MAX_BYTES, parse
from engine.language.recovery import interpret
from engine.model import ActionKind, Level, Severity, Sop

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "sops" / "payment-processing.sop.md"
SCHEMA = json.loads((ROOT / "schemas" / "sop.schema.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def seed() -> Sop:
    return parse(SEED.read_bytes(), path=str(SEED))


def step_lines(sop: Sop, level: Level) -> list[int]:
    return [
        a.line
        for s in sop.steps
        for a in s.actions
        if a.level is level and a.block == "actions" and a.kind is ActionKind.ACTION
    ]


def codes(sop: Sop) -> list[str]:
    return [d.code for d in sop.diagnostics]


# ----------------------------------------------------------------------------- the seed


def test_seed_parses_without_diagnostics(seed: Sop) -> None:
    assert seed.diagnostics == ()
    assert seed.name == "payment-processing"
    assert seed.title == "Payment Processing SOP"
    assert seed.version == "1.0.0"


def test_seed_metadata_with_lines(seed: Sop) -> None:
    assert seed.metadata == {
        "Version": "1.0.0",
        "Last Updated": "2026-01-20",
        "Owner": "Valor AI System",
        "Status": "Active",
    }
    assert seed.metadata_lines == {"Version": 3, "Last Updated": 4, "Owner": 5, "Status": 6}


def test_seed_action_counts_and_exact_lines(seed: Sop) -> None:
    # grep -n '^- MUST ' / '^- SHOULD ' / '^- MAY ' restricted to the Actions blocks
    assert step_lines(seed, Level.MUST) == [53, 54, 55, 72, 73, 85, 86, 87, 118, 119, 136]
    assert step_lines(seed, Level.SHOULD) == [56, 74, 88, 120, 137]
    assert step_lines(seed, Level.MAY) == [57, 75, 121, 138, 139]
    handling = [a for s in seed.steps for a in s.actions if a.block == "error_handling"]
    assert [(a.line, a.level, a.step, a.keyword) for a in handling] == [
        (129, Level.MUST_NOT, 4, "MUST NOT")
    ]
    assert handling[0].text == "retry payment failures (only network/timeout errors)"
    assert sum(len(s.actions) for s in seed.steps) == 22


def test_seed_action_text_and_ids(seed: Sop) -> None:
    first = seed.steps[0].actions[0]
    assert first.text == "verify customer_id exists in Stripe"
    assert first.source == "MUST verify customer_id exists in Stripe"
    assert first.keyword == "MUST" and first.step == 1 and first.kind is ActionKind.ACTION
    assert first.id == "step1:action:L53"
    assert seed.steps[2].actions[3].text == "set appropriate timeout (30 seconds)"


def test_seed_guards(seed: Sop) -> None:
    assert [(g.line, g.level) for g in seed.guards] == [
        (161, Level.MUST_NOT),
        (162, Level.MUST),
        (163, Level.MUST),
        (164, Level.SHOULD),
        (165, Level.SHOULD),
    ]
    assert all(g.kind is ActionKind.GUARD and g.step is None for g in seed.guards)
    assert all(g.block == "security" for g in seed.guards)
    assert seed.guards[3].text == "require confirmation for refunds > $100"


def test_seed_checks(seed: Sop) -> None:
    checks = [c for s in seed.steps for c in s.checks]
    # awk '/^\*\*Validation\*\*/{v=1;next} /^$/{v=0} v && /^- /{print NR}'
    assert [c.line for c in checks] == [60, 61, 78, 110, 111, 124]
    assert all(
        c.kind is ActionKind.CHECK and c.level is Level.MUST and c.keyword is None for c in checks
    )
    assert checks[-1].text == "Payment status is succeeded or processing"  # code spans kept


def test_seed_error_rules(seed: Sop) -> None:
    rules = [r for s in seed.steps for r in s.error_rules]
    assert [(r.line, r.step) for r in rules] == [(64, 1), (65, 1), (127, 4), (128, 4)]
    assert [r.message for r in rules] == [
        "Customer not found",
        "No payment method available",
        None,
        None,
    ]
    assert rules[0].condition == "customer not found"
    assert rules[3].response == "Retry with exponential backoff (max 3 retries)"


def test_seed_branches_resolve_against_enum(seed: Sop) -> None:
    step3 = seed.steps[2]
    assert [(b.label, b.line, b.param, b.value) for b in step3.branches] == [
        ("Charges", 90, "operation", "charge"),
        ("Refunds", 100, "operation", "refund"),
    ]
    charge = step3.branches[0]
    assert [(c.info, c.line) for c in charge.code] == [("python", 91)]
    assert "stripe.PaymentIntent.create(" in charge.code[0].code


def test_seed_steps(seed: Sop) -> None:
    assert [(s.number, s.title, s.line) for s in seed.steps] == [
        (1, "Validate Input", 48),
        (2, "Prepare Payment Request", 67),
        (3, "Execute Operation", 80),
        (4, "Handle Response", 113),
        (5, "Post-Processing", 131),
    ]
    assert seed.steps[0].purpose == "Ensure all required parameters are valid before processing."


def test_seed_parameters(seed: Sop) -> None:
    params = {p.name: p for p in seed.parameters}
    assert list(params) == [
        "operation",
        "customer_id",
        "amount",
        "currency",
        "idempotency_key",
        "description",
    ]
    assert [p.line for p in seed.parameters] == [21, 25, 30, 34, 38, 42]
    assert [p.required for p in seed.parameters] == [True, True, False, False, False, False]
    op = params["operation"]
    assert op.type == "string" and op.description == "Type of payment operation"
    values = op.attribute("values")
    assert values is not None and values.line == 22
    assert values.value == "`charge` | `refund` | `subscription`"
    fmt = params["customer_id"].attribute("Format")
    assert fmt is not None and fmt.value == "`cus_[a-zA-Z0-9]+`"
    assert [(a.key, a.line) for a in params["description"].attributes] == [
        ("Default", 43),
        ("Max length", 44),
    ]
    assert params["amount"].type == "integer"


def test_seed_recovery_table(seed: Sop) -> None:
    rows = {r.error_type: r for r in seed.recovery}
    assert [r.line for r in seed.recovery] == [152, 153, 154, 155, 156, 157]
    assert rows["Rate limited"].retry is True and rows["Rate limited"].backoff
    assert rows["Network timeout"].max_retries == 3 and rows["Network timeout"].backoff
    assert rows["Insufficient funds"].retry is False and rows["Insufficient funds"].notify
    fraud = rows["Fraud detected"]
    assert fraud.block and fraud.escalate and fraud.escalate_to == "supervisor"
    assert rows["Customer not found"].unknown_phrases == ("Verify customer ID", "check if deleted")
    assert rows["Card declined"].unknown_phrases == ("suggest alternative payment",)


def test_seed_examples(seed: Sop) -> None:
    first, second = seed.examples
    assert (first.number, first.title, first.line) == (1, "Simple Charge", 169)
    assert first.input_line == 172
    assert first.input == {
        "operation": "charge",
        "customer_id": "cus_ABC123",
        "amount": 2500,
        "currency": "usd",
        "description": "Monthly subscription",
    }
    assert first.expected["transaction_id"] == "pi_XYZ789"
    assert first.key_lines == {
        "operation": 173,
        "customer_id": 174,
        "amount": 175,
        "currency": 176,
        "description": 177,
    }
    assert second.expected["pending_refund"] == {"amount": 15000, "payment_intent": "pi_XYZ789"}
    assert second.key_lines["amount"] == 193


def test_seed_simple_sections(seed: Sop) -> None:
    assert seed.prerequisites[0] == "STRIPE_API_KEY environment variable configured"
    assert len(seed.success_criteria) == 4
    assert [(lk.title, lk.target, lk.line) for lk in seed.related] == [
        ("Subscription Management", "subscription-management.sop.md", 205),
        ("Refund Handling", "refund-handling.sop.md", 206),
    ]
    assert seed.version_history == ("v1.0.0 (2026-01-20): Initial version",)
    assert seed.overview.startswith("This SOP defines the standard procedure")
    assert [s.title for s in seed.sections][:3] == ["Overview", "Prerequisites", "Parameters"]
    assert [s.line for s in seed.sections] == [8, 12, 18, 46, 141, 148, 159, 167, 203, 208]


def test_seed_all_actions_order(seed: Sop) -> None:
    lines = [a.line for a in seed.all_actions()]
    assert lines[:5] == [161, 162, 163, 164, 165]
    assert len(lines) == 5 + 22 + 6
    assert lines[5:] == sorted(lines[5:])


def test_to_dict_validates_and_is_json(seed: Sop) -> None:
    data = seed.to_dict()
    jsonschema.validate(data, SCHEMA)
    assert json.loads(json.dumps(data)) == data
    assert data["steps"][0]["actions"][0]["level"] == "MUST"
    assert data["steps"][0]["actions"][0]["id"] == "step1:action:L53"
    assert "text" not in data and seed.to_dict(include_text=True)["text"] == seed.text


def test_crlf_keeps_line_numbers(seed: Sop) -> None:
    crlf = parse(SEED.read_bytes().replace(b"\n", b"\r\n"))
    assert [a.line for a in crlf.all_actions()] == [a.line for a in seed.all_actions()]
    assert crlf.content_hash != seed.content_hash


# ----------------------------------------------------------------------------- keywords


def one_step(items: str, label: str = "**Actions**:") -> str:
    return f"# T\n\n## Steps\n\n### 1. Do\n\n{label}\n{items}\n"


@pytest.mark.parametrize(
    ("item", "level", "keyword", "text"),
    [
        ("MUST do a", Level.MUST, "MUST", "do a"),
        ("MUST NOT do a", Level.MUST_NOT, "MUST NOT", "do a"),
        ("SHALL do a", Level.MUST, "SHALL", "do a"),
        ("SHALL NOT do a", Level.MUST_NOT, "SHALL NOT", "do a"),
        ("REQUIRED: do a", Level.MUST, "REQUIRED", "do a"),
        ("SHOULD NOT do a", Level.SHOULD_NOT, "SHOULD NOT", "do a"),
        ("NOT RECOMMENDED to do a", Level.SHOULD_NOT, "NOT RECOMMENDED", "to do a"),
        ("RECOMMENDED: do a", Level.SHOULD, "RECOMMENDED", "do a"),
        ("OPTIONAL: do a", Level.MAY, "OPTIONAL", "do a"),
        ("You MAY do a", Level.MAY, "MAY", "do a"),
        ("Each step MUST begin", Level.MUST, "MUST", "Each step MUST begin"),
        (
            "Each step MUST begin, and MAY end",
            Level.MUST,
            "MUST",
            "Each step MUST begin, and MAY end",
        ),
        (
            "MUST verify `customer_id` **exists** in [Stripe](https://x)",
            Level.MUST,
            "MUST",
            "verify customer_id exists in Stripe",
        ),
    ],
)
def test_keyword_forms(item: str, level: Level, keyword: str, text: str) -> None:
    sop = parse(one_step(f"- {item}"))
    (action,) = sop.steps[0].actions
    assert (action.level, action.keyword, action.text, action.line) == (level, keyword, text, 8)


def test_no_keyword_and_lower_case_are_warnings_not_actions() -> None:
    sop = parse(one_step("- MUST do a\n- do b\n- must do c\n- You should do d"))
    assert [a.line for a in sop.steps[0].actions] == [8]
    found = [(d.code, d.line, d.severity) for d in sop.diagnostics]
    assert found == [
        ("SOP020", 9, Severity.WARNING),
        ("SOP021", 10, Severity.WARNING),
        ("SOP021", 11, Severity.WARNING),
    ]
    assert "write 'MUST'" in sop.diagnostics[1].message
    assert "RFC 2119" in sop.diagnostics[0].message


def test_nested_items_become_children() -> None:
    sop = parse(one_step("- MUST create:\n  - `a.md` file\n  - b\n    - c\n- MAY d"))
    first, second = sop.steps[0].actions
    assert first.children == ("a.md file", "b", "c")
    assert (first.line, second.line) == (8, 12)


def test_validation_keyword_weakens_check() -> None:
    sop = parse(one_step("- Response is valid\n- MAY include a receipt", label="**Validation**:"))
    checks = sop.steps[0].checks
    assert [(c.level, c.keyword, c.line) for c in checks] == [
        (Level.MUST, None, 8),
        (Level.MAY, "MAY", 9),
    ]


def test_error_handling_not_understood_warns() -> None:
    sop = parse(one_step("- MUST x", "**Actions**:") + "\n**Error Handling**:\n- Shrug\n")
    assert "SOP022" in codes(sop)
    assert [d.line for d in sop.diagnostics if d.code == "SOP022"] == [11]


def test_unresolved_branch_warns() -> None:
    sop = parse(one_step("- MUST x") + "\n**For Widgets**:\n- MUST y\n")
    (branch,) = sop.steps[0].branches
    assert branch.param is None and branch.line == 10
    assert sop.steps[0].actions[1].branch == "Widgets"
    assert "SOP023" in codes(sop)


def branching_on(values: str, label: str) -> str:
    """One step branching with ``**For <label>**:`` on a parameter whose Values are given."""
    params = f"## Parameters\n\n- **op** (string, required): what to do\n  - Values: {values}\n\n"
    return one_step("- MUST x").replace("## Steps", params + "## Steps") + (
        f"\n**For {label}**:\n- MUST y\n"
    )


@pytest.mark.parametrize(
    ("label", "value"),
    [
        ("Pushes", "push"),
        ("Statuses", "status"),
        ("Refunds", "refund"),
        ("Charges", "charge"),
        ("Addresses", "address"),
        ("Entries", "entry"),
        ("Cases", "case"),
    ],
)
def test_plural_branch_resolves_to_its_singular_value(label: str, value: str) -> None:
    """Issue #10: ``**For Pushes**:`` with ``Values: push | pull`` gave SOP023 ("pushe")."""
    sop = parse(branching_on(f"`{value}` | `other`", label))
    (branch,) = sop.steps[0].branches
    assert (branch.param, branch.value) == ("op", value)
    assert "SOP023" not in codes(sop)


def test_unresolved_plural_branch_suggests_the_singular() -> None:
    sop = parse(branching_on("`pull` | `fetch`", "Pushes"))
    (message,) = [d.message for d in sop.diagnostics if d.code == "SOP023"]
    assert "list 'push' in a parameter's 'Values:'" in message


# ----------------------------------------------------------------------------- structure


def test_step_numbering_diagnostics() -> None:
    sop = parse("# T\n\n## Steps\n\n### 1. A\n- MUST a\n\n### 3. B\n- MUST b\n\n### C\n- MUST c\n")
    assert [s.number for s in sop.steps] == [1, 3, 4]
    diags = {d.code: d for d in sop.diagnostics}
    assert diags["SOP013"].line == 8 and "1..3" in diags["SOP013"].message
    assert diags["SOP012"].line == 11


def test_unknown_section_kept_as_text() -> None:
    sop = parse("# T\n\n## Steps\n\n### 1. A\n- MUST a\n\n## Notes\n\nAnything *goes*.\n")
    assert sop.diagnostics == ()
    notes = sop.sections[-1]
    assert (notes.title, notes.line, notes.text) == ("Notes", 8, "Anything *goes*.")


def test_front_matter_metadata_keeps_lines() -> None:
    text = "---\nversion: 2.0.0\nstatus: Draft\n---\n# T\n\n## Steps\n\n### 1. A\n- MUST a\n"
    sop = parse(text)
    assert sop.metadata == {"version": "2.0.0", "status": "Draft"}
    assert sop.metadata_lines == {"version": 2, "status": 3}
    assert sop.version == "2.0.0" and sop.title == "T"
    assert sop.steps[0].actions[0].line == 10


def test_bad_front_matter_is_a_diagnostic() -> None:
    sop = parse("---\nversion: [\n---\n# T\n")
    assert "SOP006" in codes(sop)


def test_example_yaml_error_points_at_line() -> None:
    text = (
        "# T\n\n## Examples\n\n### Example 1: Bad\n\n"
        "```\nInput:\n  a: [1\n\nExpected Output:\n  b: 2\n```\n"
    )
    sop = parse(text)
    (diag,) = [d for d in sop.diagnostics if d.code == "SOP050"]
    assert diag.severity is Severity.ERROR and 8 <= diag.line <= 12
    assert sop.examples[0].title == "Bad"


def test_duplicate_parameter_is_an_error() -> None:
    sop = parse("# T\n\n## Parameters\n\n- **a** (string): x\n- **a** (integer): y\n")
    assert [(d.code, d.line) for d in sop.diagnostics if d.code == "SOP031"] == [("SOP031", 6)]
    assert len(sop.parameters) == 1


def test_name_from_path_or_title() -> None:
    assert parse("# My Proc\n", path="x/refunds.sop.md").name == "refunds"
    assert parse("# My Proc!\n").name == "my-proc"


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "SOP004"),
        ("   \n\n", "SOP004"),
        (b"# T\n\x00\x01\x02", "SOP001"),
        (b"# T\n\n## Steps\n\xff\xfe bad\n", "SOP002"),
        ("# Only a heading", "SOP010"),
        (b"x" * (MAX_BYTES + 1), "SOP003"),
    ],
)
def test_bad_input_never_raises(data: str | bytes, code: str) -> None:
    sop = parse(data, path="bad.sop.md")
    assert code in codes(sop)
    diag = next(d for d in sop.diagnostics if d.code == code)
    assert diag.path == "bad.sop.md" and diag.line >= 1 and diag.message


def test_non_utf8_line_is_reported() -> None:
    sop = parse(b"# T\n\n## Steps\n\xff\n")
    (diag,) = [d for d in sop.diagnostics if d.code == "SOP002"]
    assert diag.line == 4 and "UTF-8" in diag.message


def test_ten_megabytes_is_refused_quickly() -> None:
    sop = parse(b"- MUST a\n" * 1_200_000)
    assert codes(sop) == ["SOP003"]
    assert sop.steps == ()


def test_deeply_nested_lists() -> None:
    deep = "".join("  " * i + "- MUST level\n" for i in range(500))
    sop = parse("# T\n\n## Steps\n\n### 1. A\n\n**Actions**:\n" + deep)
    assert "SOP099" not in codes(sop)
    assert sop.steps[0].actions[0].line == 8
    n = len(sop.text.split("\n"))
    assert all(1 <= d.line <= n for d in sop.diagnostics)


def test_deeply_nested_quotes_and_emphasis() -> None:
    sop = parse("# T\n\n" + ">" * 5000 + " x\n\n" + "*" * 5000 + "\n" + "[" * 5000)
    assert "SOP099" not in codes(sop)


# ----------------------------------------------------------------------------- vocabulary


@pytest.mark.parametrize(
    ("phrase", "retry", "max_retries", "backoff"),
    [
        ("Retry", True, None, False),
        ("Wait and retry", True, None, False),
        ("Retry up to 5 times", True, 5, False),
        ("max 2 retries", True, 2, False),
        ("Retry with exponential backoff (max 3 retries)", True, 3, True),
        ("Do not retry", False, None, False),
        ("Retry, then do not retry", False, None, False),
        ("exponential backoff", True, None, True),
    ],
)
def test_recovery_vocabulary(
    phrase: str, retry: bool | None, max_retries: int | None, backoff: bool
) -> None:
    fields = interpret(phrase)
    assert (fields["retry"], fields["max_retries"], fields["backoff"]) == (
        retry,
        max_retries,
        backoff,
    )
    assert fields["unknown_phrases"] == ()


def test_recovery_unknown_phrases_are_kept() -> None:
    fields = interpret("Escalate to on-call; call the bank")
    assert fields["escalate"] and fields["escalate_to"] == "on-call"
    assert fields["unknown_phrases"] == ("call the bank",)
    assert interpret("notify the customer")["notify"] is True


def test_cosmetic_label_variants() -> None:
    text = (
        "# T\n\n## Parameters\n\n- **mode** (string): m\n  - Allowed values: `fast`, `slow`\n\n"
        "## Steps\n\n### Step 1: A\n\nActions:\n- MUST a\n\n#### Validation\n- thing holds\n\n"
        "#### For Fast Runs\n- SHOULD go\n"
    )
    sop = parse(text)
    (step,) = sop.steps
    assert (step.number, step.title) == (1, "A")
    assert [(a.line, a.level, a.branch) for a in step.actions] == [
        (13, Level.MUST, None),
        (19, Level.SHOULD, "Fast Runs"),
    ]
    assert [c.line for c in step.checks] == [16]
    assert [(b.param, b.value, b.line) for b in step.branches] == [("mode", "fast", 18)]
    assert sop.diagnostics == ()


def test_front_matter_paragraph_lines_and_quote_before_list() -> None:
    text = "---\ntitle: x\n---\n# T\n\n## Steps\n\n### 1. A\n> note\n- MUST a\n\n## Notes\n"
    sop = parse(text)
    assert [a.line for a in sop.all_actions()] == [10]
    assert sop.sections[-1].line == 12


def test_leading_thematic_break_is_not_front_matter() -> None:
    sop = parse("---\n# T\n\n## Steps\n\n### 1. A\n- MUST a\n\n---\n\n## Notes\n")
    assert sop.title == "T" and [a.line for a in sop.all_actions()] == [7]
    assert "SOP006" not in codes(sop)


def test_example_dates_stay_text() -> None:
    text = (
        "# T\n\n## Examples\n\n### Example 1: d\n\n```\nInput:\n  when: 2026-01-20\n"
        "  amount: 5\nExpected Output:\n  ok: true\n```\n"
    )
    (example,) = parse(text).examples
    assert example.input == {"when": "2026-01-20", "amount": 5}
    assert example.key_lines == {"when": 9, "amount": 10}
