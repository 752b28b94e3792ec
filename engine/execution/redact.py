"""Redaction: nothing that looks like a card number, CVV or Stripe secret leaves the engine.

Applied to everything the runner writes: journal rows, log records, records and
results. It is deliberately conservative: any run of 13+ digits (single spaces or
dashes allowed between digits) that contains a Luhn-valid 13-19 digit window is
masked as a whole, keeping at most its first 6 and last 4 digits, because a card
number glued to other digits ("ref00424242424242424242") is still a card number.
A UUID-shaped value (8-4-4-4-12 hex: idempotency keys, child run ids) is never
altered: its digits joined across the dashes are not a card number. Run ids are drawn
so that redaction leaves them alone (``runner._new_run_id``).

A CVV/CVC/CID/security code is recognised in every syntax it is written in: as a
mapping key (dropped, at any depth) and inside text, where the 3-4 digits after
the keyword are masked: JSON (``"cvc": "987"``, ``"cvc":987``, also escaped JSON
inside a string), key=value (``cvc=987``, ``cvv: 123``, ``card[cvc]=123``) and
prose ("security code 123", "CVV is 123", "card verification value 1234").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

#: A digit run; a single space or dash may separate digits (card formatting).
_DIGIT_RUN = re.compile(r"[0-9](?:[ -]?[0-9]){12,}")
#: A UUID-shaped token, not glued to letters or digits (nor to digits across a space
#: or dash, so a card number cannot hide half in it).
_UUID = re.compile(
    r"(?<![0-9A-Za-z_])(?<![0-9][ -])[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
    r"(?![0-9A-Za-z])(?![ -][0-9])"
)
#: The names a card verification code goes by: cvv/cvc/cvn anywhere (card_cvc, userCvv2),
#: the others as words (CID, csc, security code, card verification value, ...).
_CVV_WORD = (
    r"(?:cvv|cvc|cvn)2?|(?:(?<![a-z0-9])|(?<=%5b))"
    r"(?:(?:card[ _.-]?)?(?:csc|cid|security[ _-]?code)"
    r"|card[ _.-]?(?:code|verification(?:[ _-]?(?:code|value|number))?))"
)
#: What may stand between the name and the digits: quotes (also escaped or
#: percent-encoded), ``:``/``=``/``=>``, brackets, and a few filler words.
_CVV_GAP = (
    r"""(?:[\s"'`:=#>()\[\]{}_\\-]|%(?:22|27|3a|3d|5b|5d)"""
    r"|(?:is|was|of|the|for|card|number|num|no|value|code)\b\.?){0,12}"
)
_CVV_PHRASE = re.compile(rf"(?i)((?:{_CVV_WORD})(?![a-z]){_CVV_GAP})(\d{{3,4}})(?!\d)")
_SECRET = re.compile(r"\b((?:sk|rk)_(?:live|test)_|whsec_)[A-Za-z0-9]+")
#: A normalized key (lower case, letters and digits only) naming a CVV: dropped.
_DROP_KEY = re.compile(
    r"(?:(?:cvv|cvc|cvn)2?|(?:^|card)(?:csc|cid)|securitycode|card(?:code|verification))"
    r"(?:code|number|num|no|value)?$"
)
_MASK_KEYS = frozenset({"password", "secret", "apikey", "secretkey", "authorization"})
MASK = "***"
#: Numbers this large may be card numbers; smaller ones never are.
_CARD_FLOOR = 10**12


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


#: ASCII digits -> "0", a space -> "-" (bytes.translate: one table lookup a byte).
_DIGIT_FOLD = bytes.maketrans(b"0123456789 ", b"0000000000-")
#: Every spelling ``_CVV_PHRASE`` matches contains one of these (case-insensitive).
_CVV_HINT = re.compile(r"(?i)cv|cid|csc|code|verif")
_CVV_HINT_WORDS = ("cv", "cid", "csc", "code", "verif")


def has_13_digits(text: str) -> bool:
    """Whether ``text`` holds 13 digits with at most one space or dash between neighbours
    (what ``[0-9](?:[ -]?[0-9]){12}`` finds), the trigger of card-number masking.

    Digits are folded to "0" and separators to "-", the one separator before a digit is
    dropped, and 13 zeros in a row remain exactly when the pattern matches. String
    operations, not that regex: sre tries it at every digit of an event's JSON, which
    made redaction scans the engine's largest regex cost in a charge.
    """
    folded = text.encode("utf-8", "surrogatepass").translate(_DIGIT_FOLD)
    return b"0000000000000" in folded.replace(b"-0", b"0")


def cvv_hint(text: str) -> bool:
    """Whether ``text`` contains a word every CVV spelling contains (``_CVV_HINT``).

    ASCII text (nearly all) is lower-cased and searched for each word, which costs a
    fraction of sre's case-insensitive alternation; other text keeps the regex, since
    Unicode case folding (e.g. U+017F, long s, matching "s") is the regex's own.
    """
    if text.isascii():
        low = text.lower()
        return any(word in low for word in _CVV_HINT_WORDS)
    return _CVV_HINT.search(text) is not None


def redact_text(text: str) -> str:
    """Mask card numbers, CVV phrases and Stripe secret keys inside free text.

    UUID-shaped tokens are kept as they are: only the text around them is scanned.
    """
    if len(text) >= 36 and "-" in text:
        out: list[str] = []
        last = 0
        for match in _UUID.finditer(text):
            out += (_redact_plain(text[last : match.start()]), match.group())
            last = match.end()
        if out:
            out.append(_redact_plain(text[last:]))
            return "".join(out)
    return _redact_plain(text)


def _redact_plain(text: str) -> str:
    if len(text) >= 13 and has_13_digits(text):
        text = _DIGIT_RUN.sub(_mask_run, text)
    if cvv_hint(text):
        text = _CVV_PHRASE.sub(lambda m: m.group(1) + MASK, text)
    if "_" in text:
        text = _SECRET.sub(lambda m: m.group(1) + MASK, text)
    return text


#: What ``_key_class`` looks for inside a normalized key (substrings of its drop/mask names).
_KEY_WORDS = re.compile("cv|cid|csc|code|verif|password|secret|apikey|authorization")
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
    if "\\" in text or has_13_digits(text) or cvv_hint(text):
        return True
    if "_" in text and _SECRET_HINT.search(text):
        return True
    low = text.lower()
    norm = low.translate(_ASCII_NON_ALNUM) if low.isascii() else _NON_ALNUM.sub("", low)
    return _KEY_WORDS.search(norm) is not None


def _text_clean(text: str) -> bool:
    """True when ``redact_text`` would return ``text`` unchanged (none of its triggers)."""
    if len(text) >= 13 and has_13_digits(text):
        return False
    if cvv_hint(text):
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
        elif kind is int or kind is float:
            if not -_CARD_FLOOR < item < _CARD_FLOOR:
                return False
        elif not (kind is bool or item is None):
            return False
    return True


@lru_cache(maxsize=4096)
def _key_class(key: str) -> str | None:
    norm = _NON_ALNUM.sub("", key.lower())
    if _DROP_KEY.search(norm):
        return "drop"
    if norm in _MASK_KEYS or norm.endswith(("password", "secretkey", "apikey")):
        return "mask"
    return None


def redact(value: Any) -> Any:
    """A redacted copy of ``value`` (JSON-like data); other objects pass through unchanged.

    Mapping keys named like a CVV are dropped (at any depth); keys named like a
    password or API key keep the key with a masked value; every string (keys too) is
    scanned with ``redact_text``; a number large enough to be a card number is
    masked like its digits.
    """
    if isinstance(value, str):
        return redact_text(value) if value else value
    if isinstance(value, Mapping):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            kind = _key_class(key) if isinstance(key, str) else None
            if kind == "drop":
                continue
            out[redact(key) if isinstance(key, str | int | float) else key] = (
                MASK if kind == "mask" else redact(item)
            )
        return out
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item) for item in value]
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and not -_CARD_FLOOR < value < _CARD_FLOOR
    ):
        text = repr(value)
        masked = redact_text(text)
        return value if masked == text else masked
    return value
