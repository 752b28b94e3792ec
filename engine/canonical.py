"""The one JSON spelling the engine stores and hashes: sorted keys, compact, UTF-8.

The journal's hash chain, the parameter seal, the confirmation operation hash and
every stored event and result are written with these functions, so a value always
has exactly one stored form. Redaction meets encoding here too: ``body`` and
``redacted_json`` give ``canonical(redact(value))``, encoding once and scanning the
text (``may_need_redaction``) before paying for ``redact`` object by object.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from engine.execution.redact import flat_clean, may_need_redaction, redact, redact_text


def _encoder(default: Callable[[Any], Any] | None = None) -> json.JSONEncoder:
    """The engine's JSON options; built once (``json.dumps`` with options builds one per call)."""
    return json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=default
    )


_CANONICAL = _encoder(default=str)
_STRICT = _encoder()  # TypeError on non-JSON types
_SAFE = _encoder(default=lambda obj: redact_text(str(obj)))


def canonical(obj: Any) -> str:
    """The one JSON spelling of ``obj`` that hashes are computed over (others: their ``str``)."""
    return _CANONICAL.encode(obj)


def strict(obj: Any) -> str:
    """``canonical`` for plain JSON data; TypeError/ValueError on anything else."""
    return _STRICT.encode(obj)


def safe(obj: Any) -> str:
    """``canonical`` with a non-JSON object written as its redacted ``str``."""
    return _SAFE.encode(obj)


def redacted(value: Any) -> Any:
    """``redact(value)``, skipped for a flat dict that redaction leaves as it is (the common
    shape of what handlers store: counts, ids, statuses; checked key by key, cached)."""
    return value if type(value) is dict and flat_clean(value) else redact(value)


def redacted_json(value: Any) -> str:
    """``canonical(redact(value))``, by one encode and a text scan when nothing needs redacting."""
    try:
        text = _STRICT.encode(value)
    except (TypeError, ValueError):  # not plain JSON: redact() decides what it becomes
        return _SAFE.encode(redact(value))
    return _SAFE.encode(redact(value)) if may_need_redaction(text) else text


def body(data: Mapping[str, Any] | None, raw: Mapping[str, Any] | None = None) -> str:
    """A stored event's JSON: ``data`` redacted, ``raw`` (engine-generated ids) as it is.

    ``canonical({**redact(data), **raw})``, except that a non-JSON object is written as
    its redacted ``str``.
    """
    if not data:
        return _CANONICAL.encode(dict(raw)) if raw else "{}"
    merged = {**data, **raw} if raw else dict(data)
    try:
        text = _STRICT.encode(merged)
    except (TypeError, ValueError):
        pass
    else:
        if not may_need_redaction(text):
            return text
    out = dict(redact(data))
    if raw:
        out.update(raw)
    return _SAFE.encode(out)


def altered_keys(value: Mapping[str, Any]) -> list[str]:
    """The keys of ``value`` whose stored (redacted) copy differs from the value itself:
    a resumed run cannot restore those exactly."""
    if type(value) is dict and flat_clean(value):
        return []
    altered = []
    for key, item in value.items():
        try:
            text: str | None = _STRICT.encode({key: item})
        except (TypeError, ValueError):
            text = None
        if text is None or (may_need_redaction(text) and _SAFE.encode(redact({key: item})) != text):
            altered.append(redact_text(str(key)))
    return sorted(altered)
