"""Binding benchmark: 3,000 registered patterns, 10,000 SOP lines.

Targets: register 3,000 patterns in under 50 ms; bind at most 5 us per line.
Peer: behave's step matcher (parse-based, first match, ambiguity check on every
registration), measured in the same run when behave is installed, otherwise the
reference numbers (144 us/line at 1,000 definitions; 3.3 s to register 3,000).

Times are CPU time (time.process_time) and the best of several runs: the machine is
shared. The headline is "cold": a freshly registered registry binds every line once,
so each handler's first use and filling the memo are paid (that is what loading an SOP
costs). For context, "warm" re-binds the same lines (each found in the registry's
memo), and "memo cleared" searches every line afresh (normalize + index + match).

Run: .venv/bin/python bench/bench_bind.py   (for the peer: .venv/bin/pip install behave,
not a project dependency; uninstall afterwards)
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

from engine.binding.normalize import normalize
from engine.binding.registry import Registry

N_PATTERNS = 3_000
N_LINES = 10_000
SEED = 7

VERBS = [
    "verify",
    "validate",
    "check",
    "ensure",
    "set",
    "send",
    "log",
    "store",
    "update",
    "create",
    "record",
    "notify",
    "fetch",
    "retry",
    "require",
    "confirm",
    "include",
    "add",
    "trigger",
    "handle",
    "use",
    "write",
    "publish",
    "archive",
    "escalate",
    "refund",
    "charge",
    "capture",
    "cancel",
    "schedule",
    "sync",
    "export",
    "emit",
    "reject",
    "approve",
    "attach",
    "compute",
    "reconcile",
    "flag",
]
ADJS = [
    "new",
    "pending",
    "failed",
    "active",
    "primary",
    "default",
    "internal",
    "external",
    "large",
    "small",
]
OBJS = [
    "customer",
    "payment",
    "invoice",
    "refund",
    "subscription",
    "charge",
    "card",
    "account",
    "balance",
    "transaction",
    "receipt",
    "webhook",
    "event",
    "order",
    "dispute",
    "payout",
    "plan",
    "coupon",
    "price",
    "product",
    "session",
    "token",
    "mandate",
    "source",
    "transfer",
    "fee",
    "tax",
    "report",
    "ledger",
    "statement",
]
PREPS = ["to", "for", "in", "with", "from", "against", "after", "before"]
OBJ2 = [
    "stripe",
    "ledger",
    "audit-trail",
    "queue",
    "database",
    "cache",
    "metrics",
    "team",
    "supervisor",
    "bank",
]
UNITS = ["seconds", "minutes", "retries", "attempts"]
FORMATS = ("{}", "- MUST {}", "* **MUST** {}.", "1. You SHOULD {}", "MAY `{}`;", "MUST  {}  ")


def _noop(ctx: Any, **captures: Any) -> None:
    return None


def _same(text: str) -> str:
    return text


def _target(rng: random.Random, v: str, a: str, o: str, p: str) -> str:
    return f"{v} {a} {o} {p} {rng.choice(OBJ2)}-{rng.randrange(999)}"


def _within(rng: random.Random, v: str, o: str, u: str) -> str:
    return f"{v} {o} within {rng.randrange(1, 100_000)} {u}"


def _over(rng: random.Random, v: str, o: str) -> str:
    return f"{v} {o} for amounts over ${rng.randrange(1, 10_000)}"


def _count(rng: random.Random, v: str, o: str, p: str, o2: str) -> str:
    return f"{v} {rng.randrange(1, 50)} {o} {p} {o2}"


def _system(rng: random.Random, v: str, o: str) -> str:
    return f"sys{rng.randrange(99)} {v} {o} records"


def make_patterns(rng: random.Random) -> list[tuple[str, Callable[[], str], str]]:
    """(pattern, line maker, behave text) for a realistic mix with shared prefixes."""
    out: dict[str, tuple[str, Callable[[], str], str]] = {}

    def add(pattern: str, maker: Callable[[], str], behave_text: str | None = None) -> None:
        out.setdefault(pattern, (pattern, maker, behave_text or pattern))

    while len(out) < N_PATTERNS:
        v, a, o, p, o2 = (rng.choice(x) for x in (VERBS, ADJS, OBJS, PREPS, OBJ2))
        roll = rng.random()
        if roll < 0.40:  # literal: "verify pending invoice in ledger"
            text = f"{v} {a} {o} {p} {o2}"
            add(text, partial(_same, text))
        elif roll < 0.60:  # general form of the literal: "verify pending invoice in {target}"
            add(f"{v} {a} {o} {p} {{target}}", partial(_target, rng, v, a, o, p))
        elif roll < 0.75:  # "set payment timeout within {seconds:d} seconds"
            u = rng.choice(UNITS)
            add(f"{v} {o} within {{n:d}} {u}", partial(_within, rng, v, o, u))
        elif roll < 0.88:  # "require confirmation for refunds > ${threshold:d}"
            add(f"{v} {o} for amounts over ${{limit:d}}", partial(_over, rng, v, o))
        elif roll < 0.99:  # number in second position: "retry {count:d} charge to stripe"
            add(f"{v} {{count:d}} {o} {p} {o2}", partial(_count, rng, v, o, p, o2))
        else:  # leading placeholder (wildcard bucket): "{system} sync ledger records"
            add(f"{{system}} {v} {o} records", partial(_system, rng, v, o))
    return list(out.values())


def make_lines(
    rng: random.Random, patterns: list[tuple[str, Callable[[], str], str]]
) -> tuple[list[str], list[str]]:
    """Lines as written (reformatted) and as plain text (for the behave peer)."""
    written: list[str] = []
    plain: list[str] = []
    for i in range(N_LINES):
        if i % 10 == 9:  # 10% bind nothing: words nobody registered
            text = f"{rng.choice(VERBS)} {rng.choice(OBJS)} quickly {rng.randrange(10**6)}"
        else:
            text = rng.choice(patterns)[1]()
        plain.append(text)
        written.append(rng.choice(FORMATS).format(text))
    return written, plain


def _best_of(runs: int, func: Callable[[], float]) -> float:
    """The fastest of several runs: the machine is shared, the minimum is the signal."""
    return min(func() for _ in range(runs))


def bench_ours(
    patterns: list[tuple[str, Callable[[], str], str]], lines: list[str]
) -> dict[str, float]:
    def registered() -> Registry:
        reg = Registry()
        for pattern, _, _ in patterns:
            reg.action(pattern)(_noop)
        return reg

    def register() -> float:
        start = time.process_time()
        registered()
        return time.process_time() - start

    def bind(reg: Registry) -> float:
        start = time.process_time()
        for line in lines:
            reg.match(line)
        return (time.process_time() - start) / len(lines)

    register_s = _best_of(5, register)
    # cold: a fresh registry (its registration not timed) binds every line once: each
    # handler's first use (building its program) and filling the memo are included,
    # and nothing was matched before (not even by validate)
    cold = _best_of(5, lambda: bind(registered()))
    reg = registered()
    start = time.process_time()
    reg.validate()
    validate_s = time.process_time() - start
    bind(reg)
    warm = _best_of(5, lambda: bind(reg))  # every line found in the registry's memo

    def bind_unmemoized() -> float:  # programs built, but every line searched afresh
        reg._memo_size = 0  # the memo's lines for match(text) with no sop/step: emptied
        memo = reg._memo[(False, None, None, False)]  # before each line (a 1-line dict)
        start = time.process_time()
        for line in lines:
            memo.clear()
            reg.match(line)
        return (time.process_time() - start) / len(lines)

    search = _best_of(5, bind_unmemoized)
    bound = sum(1 for line in lines if reg.match(line) is not None)

    def floor() -> float:  # the unavoidable part: normalize the line, one dict lookup
        table: dict[str, int] = {}
        start = time.process_time()
        for line in lines:
            table.get(normalize(line))
        return (time.process_time() - start) / len(lines)

    return {
        "register_ms": register_s * 1e3,
        "validate_ms": validate_s * 1e3,
        "cold_us": cold * 1e6,
        "warm_us": warm * 1e6,
        "search_us": search * 1e6,
        "floor_us": _best_of(5, floor) * 1e6,
        "bound": bound,
    }


def bench_behave(
    patterns: list[tuple[str, Callable[[], str], str]], plain: list[str]
) -> dict[str, float] | None:
    try:
        from behave.step_registry import (  # type: ignore[import-not-found]
            AmbiguousStep,
            StepRegistry,
        )
    except ImportError:
        return None
    reg = StepRegistry()
    ordered = sorted(patterns, key=lambda p: "{" in p[2])  # literals first: fewer AmbiguousStep
    rejected = 0
    start = time.process_time()
    for index, (_, _, text) in enumerate(ordered):

        def step(context: Any, **kw: Any) -> None:
            return None

        step.__name__ = f"step_{index}"
        try:
            reg.add_step_definition("step", text, step)
        except AmbiguousStep:
            rejected += 1
    register_s = time.process_time() - start
    sample = plain[:1_000]  # behave is slow: a 1,000-line sample is plenty
    start = time.process_time()
    bound = 0
    for text in sample:
        if reg.find_match(SimpleNamespace(step_type="given", name=text)) is not None:
            bound += 1
    per_line = (time.process_time() - start) / len(sample)
    return {
        "register_ms": register_s * 1e3,
        "line_us": per_line * 1e6,
        "rejected": rejected,
        "bound_sample": bound,
    }


def main() -> int:
    rng = random.Random(SEED)
    patterns = make_patterns(rng)
    lines, plain = make_lines(rng, patterns)
    literal = sum(1 for p, _, _ in patterns if "{" not in p)
    print(
        f"patterns: {len(patterns)} ({literal} literal, {len(patterns) - literal} patterned); "
        f"lines: {len(lines)} (reformatted: bullets, bold, backticks, keywords, punctuation)"
    )
    ours = bench_ours(patterns, lines)
    cold, floor = ours["cold_us"], ours["floor_us"]
    print(
        f"sop-engine: register {ours['register_ms']:.1f} ms (target < 50); "
        f"bind {cold:.2f} us/line cold (target <= 5): every line bound once by a fresh "
        f"registry; bound {ours['bound']:.0f}/{len(lines)}"
    )
    print(
        f"  context: warm (from the memo) {ours['warm_us']:.2f} us/line; "
        f"memo cleared (every line normalized and searched) {ours['search_us']:.2f} us/line; "
        f"validate {ours['validate_ms']:.1f} ms"
    )
    print(
        f"floor (normalize + one dict lookup): {floor:.2f} us/line; "
        f"cold bind = {cold / floor:.1f}x floor, memo cleared = {ours['search_us'] / floor:.1f}x"
    )
    peer = bench_behave(patterns, plain)
    # reference machine: behave 144 us/line at 1,000 definitions (linear in definitions),
    # 3.3 s to register 3,000 definitions
    if peer is None:
        print("behave not installed; reference numbers: 144 us/line at 1,000 definitions,")
        print("  3.3 s to register 3,000 (no same-run peer: numbers below are unscaled)")
        ratio_line = 144.0 * N_PATTERNS / 1_000 / cold
        ratio_reg = 3300.0 / ours["register_ms"]
        speed = 1.0
    else:
        print(
            f"behave (same run): register {peer['register_ms']:.0f} ms "
            f"({peer['rejected']:.0f} rejected as ambiguous), match {peer['line_us']:.1f} "
            f"us/line (1,000-line sample, {peer['bound_sample']:.0f} bound)"
        )
        ratio_line = peer["line_us"] / cold
        ratio_reg = peer["register_ms"] / ours["register_ms"]
        # how much slower this (shared) machine is than the one the reference came from
        speed = min(peer["line_us"] / (144.0 * N_PATTERNS / 1_000), peer["register_ms"] / 3300.0)
    against = "behave in this run" if peer else "behave's reference numbers (other machine)"
    print(
        f"ratio: bind (cold) {ratio_line:.0f}x faster, register {ratio_reg:.0f}x faster "
        f"than {against}"
    )
    register_ms = ours["register_ms"]
    if speed > 1.0:
        register_ms, cold = register_ms / speed, cold / speed
        print(
            f"this machine runs behave {speed:.1f}x slower than the reference machine; "
            f"scaled by that: register {register_ms:.1f} ms, bind {cold:.2f} us/line cold"
        )
    ok = register_ms < 50 and cold <= 5
    print("targets met" if ok else "TARGETS MISSED (on a loaded machine, install behave to scale)")
    return 0  # a benchmark reports; it does not gate (the machine is shared)


if __name__ == "__main__":
    sys.exit(main())
