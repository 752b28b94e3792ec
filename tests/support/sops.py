"""SOP models and texts shared by several test modules."""

from __future__ import annotations

import hashlib

from engine.model import ParamAttribute, Parameter, Sop


def param(
    name: str, type_: str | None, required: bool, line: int, *attrs: tuple[str, str]
) -> Parameter:
    return Parameter(
        name=name,
        type=type_,
        description=f"{name} description",
        required=required,
        line=line,
        attributes=tuple(ParamAttribute(k, v, line + i + 1) for i, (k, v) in enumerate(attrs)),
    )


def make_sop(*params: Parameter, name: str = "demo", path: str | None = None) -> Sop:
    text = repr(params) + name
    return Sop(
        name=name,
        title="Demo SOP",
        path=path,
        text=text,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        parameters=params,
    )


def seed_like(name: str = "payments", path: str | None = None) -> Sop:
    """The seed's Parameters section, built by hand (independent of the parser)."""
    return make_sop(
        param("operation", "string", True, 21, ("Values", "`charge` | `refund` | `subscription`")),
        param("customer_id", "string", True, 25, ("Format", "`cus_[a-zA-Z0-9]+`")),
        param(
            "amount",
            "integer",
            False,
            30,
            ("Default", "Required for charge operations"),
            ("Constraints", "Must be positive, max 99999999"),
        ),
        param(
            "currency",
            "string",
            False,
            34,
            ("Default", "`usd`"),
            ("Example", "`usd`, `eur`, `gbp`"),
        ),
        param("idempotency_key", "string", False, 38, ("Default", "Auto-generated UUID")),
        param(
            "description",
            "string",
            False,
            42,
            ("Default", "None"),
            ("Max length", "500 characters"),
        ),
        name=name,
        path=path,
    )


MINI = """\
# Mini Refunds

**Version**: 0.1.0
**Status**: Active

## Overview

A small procedure used by the binding tests.

## Prerequisites

- MINI_TOKEN environment variable configured
- A calm mind

## Parameters

- **operation** (string): What to do
  - Values: `charge` | `refund`
- **amount** (integer): Amount in cents
  - Constraints: Must be positive

## Steps

### 1. Check

**Actions**:
- MUST verify customer exists
- SHOULD set appropriate timeout (30 seconds)
- MAY send a postcard

**For Charges**:
- MUST capture the charge

**For Refunds**:
- MUST require confirmation for refunds > $100

**Validation**:
- Amount is positive

## Security Considerations

- MUST NOT log full card numbers
"""


AWKWARD = """# Awkward "Quotes" [and] Brackets

## Overview

Characters that break diagrams.

## Parameters

- **mode** (string): which way
  - Values: `fast` | `slow`

## Steps

### 1. Say "hi" [now] {please} <b>bold</b> a|b #1

**Actions**:
- MUST print "quoted" text --> with an arrow; end
- SHOULD NOT use `backticks` (really)

### 2. Pick

**Actions**:
- MUST pick a path

**For Fast**:
- MUST go fast

**For Slow**:
- MAY go slow
"""


FRAGMENTS = [
    "# Title\n",
    "## Overview\n\nText.\n",
    "## Parameters\n",
    "- **amount** (integer): cents\n  - Constraints: Must be positive, max 5\n",
    "- **op** (string): op\n  - Values: `a` | `b`\n  - Default: Required for a operations\n",
    "- **re** (string): r\n  - Format: `[unclosed`\n",
    "## Steps\n",
    "### 1. One\n\n**Actions**:\n- MUST do one\n- MUST NOT do two\n",
    "### 3. Three\n\n**For As**:\n- MAY a\n\n**For Zs**:\n- MAY z\n",
    "## Examples\n\n### Example 1: E\n\n```\nInput:\n  op: c\n  amount: 0\n  x: 1\n```\n",
    "## Error Recovery\n\n| Error Type | Recovery Procedure |\n|---|---|\n| Boom | Pray twice |\n",
    "## Related SOPs\n\n- [Gone](gone.sop.md)\n",
    "**Constraints:**\n- You MUST NOT stop\n",
    "> " * 30 + "- x\n",
    "\x00",
    "\ufffd\u202e",
]
