"""Binding benchmark: sop-engine's registry against behave's step registry, same run.

The ratio the project keeps (issue #10): binding at least 20x faster per line than
behave's step registry at 1,000 patterns. Both get the same 1,000 patterns (parse-style
for behave: the placeholder syntax is the same) and the same 2,000 lines; behave gets
each line as plain text, sop-engine as written in an SOP (bullets, bold, backticks,
RFC 2119 keywords, punctuation: more work, normalized first).

Measured (CPU time, best of several passes, the two alternating: the machine is shared):

* behave: ``StepRegistry.find_match`` per line (its registration compiled every regex);
* sop-engine, the headline: ``Registry.match`` per line with every regex compiled and no
  memo (``memo_limit = 0``): each line normalized, looked up and matched afresh;
* for context: the first pass of a fresh registry (regexes compile on first use) and
  the same lines again from the registry's memo.

Registration must stay linear: 1,000 and 10,000 patterns, time per pattern.

behave runs in ``.venv-bench`` (``bench/peers/behave_peer.py``), never a project
dependency; the bench installs it there on first use. Run: .venv/bin/python
bench/bench_bind.py
"""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from report import skip_line, summary_line  # bench/ is first on sys.path when run as a script

from engine.binding.registry import Registry

N_PATTERNS = 1_000
N_LINES = 2_000
LINEAR_AT = 10_000  # registration time per pattern here vs at N_PATTERNS
RATIO_TARGET = 20.0
PASSES = 5
SEED = 7
ROOT = Path(__file__).resolve().parents[1]
PEER_VENV = ROOT / ".venv-bench"
PEER = Path(__file__).resolve().parent / "peers" / "behave_peer.py"

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


def make_patterns(rng: random.Random, count: int) -> list[tuple[str, Callable[[], str], str]]:
    """(pattern, line maker, behave text) for a realistic mix with shared prefixes."""
    out: dict[str, tuple[str, Callable[[], str], str]] = {}

    def add(pattern: str, maker: Callable[[], str], behave_text: str | None = None) -> None:
        out.setdefault(pattern, (pattern, maker, behave_text or pattern))

    while len(out) < count:
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
    rng: random.Random, patterns: list[tuple[str, Callable[[], str], str]], count: int
) -> tuple[list[str], list[str]]:
    """Lines as written (reformatted) and as plain text (for the behave peer)."""
    written: list[str] = []
    plain: list[str] = []
    for i in range(count):
        if i % 10 == 9:  # 10% bind nothing: words nobody registered
            text = f"{rng.choice(VERBS)} {rng.choice(OBJS)} quickly {rng.randrange(10**6)}"
        else:
            text = rng.choice(patterns)[1]()
        plain.append(text)
        written.append(rng.choice(FORMATS).format(text))
    return written, plain


def _noop(ctx: Any, **captures: Any) -> None:
    return None


def registered(patterns: list[tuple[str, Callable[[], str], str]]) -> Registry:
    reg = Registry()
    for pattern, _, _ in patterns:
        reg.action(pattern)(_noop)
    return reg


def register_seconds(patterns: list[tuple[str, Callable[[], str], str]]) -> float:
    gc.collect()  # each measurement starts from the same heap, not the last one's garbage
    start = time.process_time()
    registered(patterns)
    return time.process_time() - start


def bind_pass(reg: Registry, lines: list[str]) -> float:
    """Seconds per line to bind every line once."""
    start = time.process_time()
    for line in lines:
        reg.match(line)
    return (time.process_time() - start) / len(lines)


def peer_python() -> Path | None:
    """``.venv-bench``'s python with behave importable: made on first use."""
    python = PEER_VENV / "bin" / "python"
    check = [str(python), "-c", "import behave"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print("installing behave into .venv-bench (the bench's own virtualenv) ...", flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "behave"]
    if subprocess.run(pip).returncode != 0:
        return None
    return python


class Behave:
    """behave's registry in its own process, one pass per request."""

    def __init__(self, python: Path, patterns: list[str], lines: list[str]) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(PEER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.setup = self._ask(json.dumps({"patterns": patterns, "lines": lines}))

    def _ask(self, request: str) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return answer

    def bind_pass(self) -> dict[str, Any]:
        return self._ask("pass")

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def main() -> int:
    rng = random.Random(SEED)
    patterns = make_patterns(rng, N_PATTERNS)
    lines, plain = make_lines(rng, patterns, N_LINES)
    literal = sum(1 for p, _, _ in patterns if "{" not in p)
    print(
        f"patterns: {len(patterns)} ({literal} literal, {len(patterns) - literal} with "
        f"placeholders); lines: {len(lines)} (as written in an SOP for sop-engine, plain "
        "for behave)"
    )

    # registration: linear in the number of patterns
    many = make_patterns(random.Random(SEED + 1), LINEAR_AT)
    per_small = min(register_seconds(patterns) for _ in range(PASSES)) / len(patterns)
    per_large = min(register_seconds(many) for _ in range(3)) / len(many)
    print(
        f"sop-engine register: {per_small * 1e6:.1f} us/pattern at {len(patterns):,}, "
        f"{per_large * 1e6:.1f} us/pattern at {len(many):,} "
        f"({per_large / per_small:.2f}x: linear when about 1)"
    )

    # sop-engine: first pass of fresh registries, then afresh without memo, then memo
    first = min(bind_pass(registered(patterns), lines) for _ in range(PASSES))
    fresh = registered(patterns)
    fresh.memo_limit = 0  # the memo starts over at every line: each is searched afresh
    bind_pass(fresh, lines)  # every regex a line reaches is compiled
    memo = registered(patterns)
    bind_pass(memo, lines)

    python = peer_python()
    peer = None if python is None else Behave(python, [p[2] for p in patterns], plain)
    ours: list[float] = []
    theirs: list[float] = []
    remembered: list[float] = []
    bound_theirs = 0
    for _ in range(PASSES):  # alternating, so both see the same machine load
        ours.append(bind_pass(fresh, lines))
        remembered.append(bind_pass(memo, lines))
        if peer is not None:
            answer = peer.bind_pass()
            theirs.append(answer["us_per_line"] / 1e6)
            bound_theirs = answer["bound"]
    bound = sum(1 for line in lines if fresh.match(line) is not None)
    print(
        f"sop-engine match: {min(ours) * 1e6:.2f} us/line (every line normalized and "
        f"searched afresh, bound {bound}/{len(lines)}); first pass of a fresh registry "
        f"{first * 1e6:.2f} us/line (regexes compile on first use); from the memo "
        f"{min(remembered) * 1e6:.2f} us/line"
    )
    if peer is None:
        print("behave: could not be installed into .venv-bench; no ratio this run")
        print(skip_line("bind_behave", "behave could not be installed into .venv-bench"))
        return 0
    peer.close()
    print(
        f"behave {peer.setup['version']} find_match: {min(theirs) * 1e6:.1f} us/line "
        f"(bound {bound_theirs}/{len(plain)}); register {peer.setup['register_ms']:.0f} ms "
        f"({peer.setup['rejected']} rejected as ambiguous)"
    )
    ratio = min(theirs) / min(ours)
    verdict = "met" if ratio >= RATIO_TARGET else "MISSED"
    print(
        f"ratio: binding {ratio:.0f}x faster per line than behave at {len(patterns):,} "
        f"patterns (target >= {RATIO_TARGET:.0f}x: {verdict}); first pass "
        f"{min(theirs) / first:.0f}x"
    )
    print(
        summary_line(
            "bind_behave",
            ratio,
            f">={RATIO_TARGET:g}",
            what=f"binding per line vs behave at {len(patterns):,} patterns",
            measured=f"{min(ours) * 1e6:.1f} us/line",
            peer=f"behave find_match {min(theirs) * 1e6:.0f} us/line",
        )
    )
    return 0  # a benchmark reports; it does not gate (the machine is shared)


if __name__ == "__main__":
    sys.exit(main())
