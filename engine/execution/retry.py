"""Retry policy from the SOP's own words, executed with tenacity.

A failure is retried only when the SOP (or the handler) says it is transient:
``SopFailure(retryable=True)``, an Error Recovery row whose procedure says retry
("Rate limited | Wait and retry with exponential backoff"), or the step's Error
Handling rule whose response says retry ("If network error: Retry with exponential
backoff (max 3 retries)"). A rule that says "do not retry", and any decline, wins
over everything else. The number of attempts comes from the SOP text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from engine.errors import SopFailure
from engine.execution.settings import seconds
from engine.language import recovery
from engine.model import Sop, Step

T = TypeVar("T")
DEFAULT_MAX_RETRIES = 3

_WORDS = re.compile(r"[a-z0-9]+")


def normalize(text: str) -> str:
    """Lower-case words only: "Network timeout." == "network  TIMEOUT"."""
    return " ".join(_WORDS.findall(text.lower()))


def conditions_match(failure: str, rule: str) -> bool:
    """Equal after normalization, or one is a whole-word phrase inside the other."""
    a, b = normalize(failure), normalize(rule)
    if not a or not b:
        return False
    if a == b:
        return True
    return f" {a} " in f" {b} " or f" {b} " in f" {a} "


def is_decline(condition: str) -> bool:
    """Declines are final: the customer's bank said no; retrying charges again."""
    return bool(re.search(r"\bdeclin", normalize(condition)))


@dataclass(frozen=True)
class Phrase:
    """What a recovery phrase says about retrying."""

    retry: bool | None
    max_retries: int | None
    backoff: bool


def interpret(phrase: str) -> Phrase:
    """What a phrase says about retrying, in the parser's recovery vocabulary."""
    fields = recovery.interpret(phrase)
    return Phrase(fields["retry"], fields["max_retries"], fields["backoff"])


@dataclass(frozen=True)
class RetryPolicy:
    """How many attempts a failure gets, and the SOP line that says so."""

    retry: bool
    max_retries: int = 0
    backoff: bool = True
    source: str = ""

    @property
    def attempts(self) -> int:
        return 1 + (self.max_retries if self.retry else 0)


NO_RETRY = RetryPolicy(False, 0, False, "")


def policy_for(exc: BaseException, sop: Sop, step: Step | None) -> RetryPolicy:
    """The retry policy the SOP gives this failure (NO_RETRY unless something says retry)."""
    if not isinstance(exc, SopFailure):
        return NO_RETRY
    condition = exc.condition
    if is_decline(condition):
        return RetryPolicy(False, 0, False, "declines are never retried")
    said: list[RetryPolicy] = []
    rules = [r for s in ([step] if step else []) for r in s.error_rules]
    for rule in rules:
        if conditions_match(condition, rule.condition):
            phrase = interpret(rule.response)
            if phrase.retry is not None:
                said.append(
                    _policy(
                        phrase.retry, phrase.max_retries, phrase.backoff, rule.line, rule.condition
                    )
                )
    for row in sop.recovery:
        if conditions_match(condition, row.error_type):
            retry = row.retry
            max_retries, backoff = row.max_retries, row.backoff
            if retry is None:
                phrase = interpret(row.procedure)
                retry, max_retries, backoff = phrase.retry, phrase.max_retries, phrase.backoff
            if retry is not None:
                said.append(_policy(retry, max_retries, backoff, row.line, row.error_type))
    if any(not p.retry for p in said):
        return next(p for p in said if not p.retry)
    if said:
        return said[0]
    if exc.retryable:
        return RetryPolicy(True, DEFAULT_MAX_RETRIES, True, "handler marked it retryable")
    return NO_RETRY


def _policy(
    retry: bool, max_retries: int | None, backoff: bool, line: int, what: str
) -> RetryPolicy:
    if not retry:
        return RetryPolicy(False, 0, False, f"line {line}: {what}: do not retry")
    count = DEFAULT_MAX_RETRIES if max_retries is None else max_retries
    return RetryPolicy(True, count, backoff, f"line {line}: {what}")


def base_delay() -> float:
    """``SOP_RETRY_BASE_SECONDS`` (default 0.5): the first backoff interval."""
    return seconds("SOP_RETRY_BASE_SECONDS", 0.5, zero="no wait")


def call(
    attempt: Callable[[int], T],
    policy_of: Callable[[BaseException], RetryPolicy],
    *,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    base: float | None = None,
) -> T:
    """Call ``attempt(n)`` (n = 1, 2, ...) until it returns or its failure may not be retried.

    The policy is looked up per failure, since each attempt may fail differently;
    the attempt budget is the one the failure's rule gives. Exponential backoff with
    full jitter (tenacity ``wait_random_exponential``) starting at ``base`` seconds.
    The first attempt runs outside tenacity: most calls succeed and pay nothing for it.
    """
    try:
        return attempt(1)
    except Exception as exc:
        if not policy_of(exc).retry:
            raise
        return _retry(exc, attempt, policy_of, on_retry, base_delay() if base is None else base)


def _retry(
    first: Exception,
    attempt: Callable[[int], T],
    policy_of: Callable[[BaseException], RetryPolicy],
    on_retry: Callable[[int, BaseException, float], None] | None,
    delay: float,
) -> T:
    """Attempts 2.. under tenacity; attempt 1's failure is replayed as tenacity's first."""

    def should_retry(state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        if exc is None:
            return False
        policy = policy_of(exc)
        return policy.retry and state.attempt_number < policy.attempts

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        policy = policy_of(exc) if exc else NO_RETRY
        if not policy.backoff:
            return float(tenacity.wait_random(0, delay)(state)) + delay
        return float(
            tenacity.wait_random_exponential(multiplier=delay, max=max(delay, 60.0))(state)
        )

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            exc = state.outcome.exception()
            if exc is not None:
                on_retry(state.attempt_number, exc, state.upcoming_sleep)

    counter = [0]

    def once() -> T:
        counter[0] += 1
        if counter[0] == 1:
            raise first
        return attempt(counter[0])

    retrying = tenacity.Retrying(
        retry=should_retry,
        wait=wait,
        before_sleep=before_sleep,
        reraise=True,
        stop=tenacity.stop_never,
    )
    return retrying(once)
