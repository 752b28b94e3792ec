"""Stripe's idempotency semantics, which localstripe ignores.

Per https://docs.stripe.com/api/idempotent_requests: a POST carrying an
``Idempotency-Key`` is executed once; later requests with the same key and the
same parameters get the saved status and body back (header
``Idempotent-Replayed: true``); the same key with other parameters is an
``idempotency_error``; keys may be pruned after 24 hours; results are saved only
once the endpoint began executing (not for parameter validation failures).
Keys are scoped per account, here per API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl

TTL_SECONDS = 24 * 60 * 60
MAX_KEY_LENGTH = 255


def fingerprint(method: str, path: str, query: str, content_type: str, body: bytes) -> str:
    """Identity of a request's parameters; form fields compare regardless of order."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        pairs = sorted(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        payload = repr(pairs).encode()
    else:
        payload = body
    query_pairs = repr(sorted(parse_qsl(query, keep_blank_values=True))).encode()
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), query_pairs, payload):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def should_save(status: int) -> bool:
    """Whether a response counts as "the endpoint began executing".

    localstripe answers parameter validation failures (and unknown objects) with
    4xx; Stripe saves nothing for those. Card declines (402) and server errors
    (5xx) are saved and replayed, as Stripe does.
    """
    return not (400 <= status < 500 and status != 402)


@dataclass(frozen=True)
class SavedResponse:
    status: int
    content_type: str
    body: bytes
    request_id: str


@dataclass(frozen=True)
class Entry:
    fingerprint: str
    saved_at: float
    response: SavedResponse


class IdempotencyCache:
    """Saved responses by (scope, key), a lock per key, and a 24h expiry.

    ``advance`` moves the cache's clock forward so tests can expire keys.
    """

    def __init__(self, ttl: float = TTL_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.ttl = ttl
        self._clock = clock
        self._offset = 0.0
        self._entries: dict[tuple[str, str], Entry] = {}
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, list[int]]] = {}

    def now(self) -> float:
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        self._offset += seconds

    @contextlib.asynccontextmanager
    async def locked(self, scope: str, key: str) -> AsyncIterator[None]:
        """Serialize requests with the same key, so only one reaches localstripe."""
        slot = self._locks.setdefault((scope, key), (asyncio.Lock(), [0]))
        slot[1][0] += 1
        try:
            async with slot[0]:
                yield
        finally:
            slot[1][0] -= 1
            if slot[1][0] == 0:
                self._locks.pop((scope, key), None)

    def lookup(self, scope: str, key: str) -> Entry | None:
        entry = self._entries.get((scope, key))
        if entry is not None and self.now() - entry.saved_at >= self.ttl:
            del self._entries[(scope, key)]
            return None
        return entry

    def save(self, scope: str, key: str, fp: str, response: SavedResponse) -> None:
        self._prune()
        self._entries[(scope, key)] = Entry(fp, self.now(), response)

    def _prune(self) -> None:
        cutoff = self.now() - self.ttl
        for k in [k for k, e in self._entries.items() if e.saved_at <= cutoff]:
            del self._entries[k]

    def clear(self) -> None:
        self._entries.clear()
        self._offset = 0.0

    def __len__(self) -> int:
        return len(self._entries)
