"""Redaction: nothing that looks like a card number, CVV or Stripe secret leaves the engine.

Applied to everything the runner writes: journal rows, log records, records and
results. It is deliberately conservative: any run of 13+ digits (single spaces or
dashes allowed between digits) that contains a Luhn-valid 13-19 digit window is
masked as a whole, keeping at most its first 6 and last 4 digits, because a card
number glued to other digits ("ref00424242424242424242") is still a card number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

#: A digit run; a single space or dash may separate digits (card formatting).
_DIGIT_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
_CVV_PHRASE = re.compile(
    r"(?i)\b(cvv2?|cvc2?|cid|card[ _-]?code|security[ _-]?code)\b"
    r"(\s*(?:[:=#]|is)?\s*)([0-9]{3,4})(?![0-9])"
)
_SECRET = re.compile(r"\b((?:sk|rk)_(?:live|test)_|whsec_)[A-Za-z0-9]+")
_DROP_KEYS = frozenset(
    {"cvv", "cvv2", "cvc", "cvc2", "cid", "cardcode", "securitycode", "cardcvc", "cardcvv"}
)
_MASK_KEYS = frozenset({"password", "secret", "apikey", "secretkey", "authorization"})
MASK = "***"


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum every payment card number satisfies."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _has_card(digits: str) -> bool:
    size = len(digits)
    for length in range(13, min(size, 19) + 1):
        for start in range(size - length + 1):
            if luhn_ok(digits[start : start + length]):
                return True
    return False


def _mask_run(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if not _has_card(digits):
        return match.group(0)
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


_HAS_13_DIGITS = re.compile(r"[0-9](?:[ -]?[0-9]){12}")
_CVV_HINT = re.compile(r"(?i)cv|cid|code")


def redact_text(text: str) -> str:
    """Mask card numbers, CVV phrases and Stripe secret keys inside free text."""
    if len(text) >= 13 and _HAS_13_DIGITS.search(text):
        text = _DIGIT_RUN.sub(_mask_run, text)
    if _CVV_HINT.search(text):
        text = _CVV_PHRASE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if "_" in text:
        text = _SECRET.sub(lambda m: m.group(1) + MASK, text)
    return text


#: What ``_key_class`` looks for inside a normalized key (substrings of its drop/mask names).
_KEY_WORDS = re.compile("cv|cid|code|password|secret|apikey|authorization")
_NON_ALNUM = re.compile(r"[^a-z0-9]")
_ASCII_NON_ALNUM = str.maketrans(
    "", "", "".join(c for c in map(chr, range(128)) if not ("a" <= c <= "z" or "0" <= c <= "9"))
)
_SECRET_HINT = re.compile(r"(?:sk|rk)_(?:live|test)_|whsec_")


def may_need_redaction(text: str) -> bool:
    """False only when ``redact`` would change no key and no value that ``text`` spells.

    ``text`` is the JSON (``ensure_ascii=False``) of JSON-native data. Without a
    backslash every key and string appears in it verbatim, so one scan of the whole
    text with each rule's trigger (a 13-digit run, a CVV hint, a secret-key prefix)
    and of its normalized form (a drop/mask key name, normalized as ``_key_class``
    does) is a superset of what ``redact`` checks value by value. A True is only a
    hint: the caller then runs ``redact`` itself.
    """
    if "\\" in text or _HAS_13_DIGITS.search(text) or _CVV_HINT.search(text):
        return True
    if "_" in text and _SECRET_HINT.search(text):
        return True
    low = text.lower()
    norm = low.translate(_ASCII_NON_ALNUM) if low.isascii() else _NON_ALNUM.sub("", low)
    return _KEY_WORDS.search(norm) is not None


def _text_clean(text: str) -> bool:
    """True when ``redact_text`` would return ``text`` unchanged (none of its triggers)."""
    if len(text) >= 13 and _HAS_13_DIGITS.search(text):
        return False
    if _CVV_HINT.search(text):
        return False
    return "_" not in text or not _SECRET.search(text)


@lru_cache(maxsize=4096)
def _key_clean(key: str) -> bool:
    return _key_class(key) is None and _text_clean(key)


def flat_clean(value: dict[Any, Any]) -> bool:
    """True when ``value`` is a flat dict of str keys and scalars that ``redact`` leaves as is.

    The common shape of what a handler stores (counts, ids, statuses): checked key by
    key (cached) and value by value, without walking or scanning anything nested.
    """
    for key, item in value.items():
        if type(key) is not str or not _key_clean(key):
            return False
        kind = type(item)
        if kind is str:
            if not _text_clean(item):
                return False
        elif kind is int:
            if item >= 10**12:
                return False
        elif not (kind is float or kind is bool or item is None):
            return False
    return True


@lru_cache(maxsize=4096)
def _key_class(key: str) -> str | None:
    norm = re.sub(r"[^a-z0-9]", "", key.lower())
    if norm in _DROP_KEYS or norm.endswith(("cvv", "cvc", "securitycode")):
        return "drop"
    if norm in _MASK_KEYS or norm.endswith(("password", "secretkey", "apikey")):
        return "mask"
    return None


def redact(value: Any) -> Any:
    """A redacted copy of ``value`` (JSON-like data); other objects pass through unchanged.

    Mapping keys named like a CVV are dropped; keys named like a password or API key
    keep the key with a masked value; every string is scanned with ``redact_text``.
    """
    if isinstance(value, str):
        return redact_text(value) if value else value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            kind = _key_class(key) if isinstance(key, str) else None
            if kind == "drop":
                continue
            out[redact(key) if isinstance(key, str) else key] = (
                MASK if kind == "mask" else redact(item)
            )
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**12:
        text = str(value)
        masked = redact_text(text)
        return value if masked == text else masked
    return value
