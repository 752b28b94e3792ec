"""The layer in front of localstripe: idempotency, fault injection, request log.

Every request under ``/v1/`` (and anything else that is not a control route) is
logged, checked against the armed faults, deduplicated by Idempotency-Key, and
forwarded to localstripe. Control routes live under ``/_sandbox/``:

    GET    /_sandbox/health     {"ok": true, "upstream": URL}
    GET    /_sandbox/requests   {"counts": {...}, "requests": [{method, path, idempotency_key,
                                                        status, ..., connection}]}
    POST   /_sandbox/faults     {"fault": "429", "match": "/v1/payment_intents",
                                 "method": "POST", "times": 1, "seconds": 120,
                                 "decline_code": "insufficient_funds" (fault "decline")}
    GET    /_sandbox/faults     armed faults;  DELETE /_sandbox/faults  disarm all
    POST   /_sandbox/clock      {"advance": SECONDS}  moves the idempotency clock (key expiry)
    POST   /_sandbox/reset      flush localstripe's data, idempotency cache, faults, log
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from handlers.sandbox.faults import FaultTable
from handlers.sandbox.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyCache,
    SavedResponse,
    fingerprint,
    should_save,
)

RATE_LIMIT_MESSAGE = (
    "Request rate limit exceeded. Learn more about rate limits here "
    "https://stripe.com/docs/rate-limits."
)
# Stripe's messages for common decline codes; anything else is "Your card was declined."
DECLINE_MESSAGES = {
    "insufficient_funds": "Your card has insufficient funds.",
    "expired_card": "Your card has expired.",
    "incorrect_cvc": "Your card's security code is incorrect.",
    "processing_error": "An error occurred while processing your card. Try again in a little bit.",
}
FORWARDED_HEADERS = ("Authorization", "Content-Type", "Stripe-Version", "Stripe-Account")

CACHE: web.AppKey[IdempotencyCache] = web.AppKey("cache", IdempotencyCache)
FAULTS: web.AppKey[FaultTable] = web.AppKey("faults", FaultTable)
LOG: web.AppKey[list[dict[str, Any]]] = web.AppKey("log", list)
UPSTREAM: web.AppKey[str] = web.AppKey("upstream", str)
SESSION: web.AppKey[ClientSession] = web.AppKey("session", ClientSession)
STOPPING: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)
ON_RESET: web.AppKey[Callable[[], None]] = web.AppKey("on_reset")


def stripe_error(
    status: int, type_: str, message: str, code: str | None = None, **extra: str
) -> web.Response:
    """A response shaped like Stripe's errors, so the SDK raises the right class."""
    error: dict[str, Any] = {"type": type_, "message": message, **extra}
    if code is not None:
        error["code"] = code
    return web.json_response({"error": error}, status=status, headers=_ids())


class Connections:
    """Numbers the TCP connections requests arrive on (1, 2, ...), so a test can see
    whether a client kept its connection open between requests (HTTP keep-alive)."""

    def __init__(self) -> None:
        self._numbers: weakref.WeakKeyDictionary[object, int] = weakref.WeakKeyDictionary()
        self._count = 0

    def number(self, request: web.Request) -> int | None:
        transport = request.transport
        if transport is None:
            return None
        if transport not in self._numbers:
            self._count += 1
            self._numbers[transport] = self._count
        return self._numbers[transport]


CONNECTIONS: web.AppKey[Connections] = web.AppKey("connections", Connections)


def _ids() -> dict[str, str]:
    return {"Request-Id": "req_" + secrets.token_hex(7)}


def _reset_connection(request: web.Request) -> None:
    """Close the client's connection with a TCP RST, sending no response."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def _hold(request: web.Request, seconds: float) -> None:
    """Keep a request unanswered (client sees a timeout); stop early if it goes away."""
    stopping = request.app[STOPPING]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline and not stopping.is_set():
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(min(0.05, max(0.0, deadline - loop.time())))


async def _forward(request: web.Request, body: bytes, delay: float = 0.0) -> SavedResponse:
    if delay:
        await asyncio.sleep(delay)  # a slow Stripe: the request is in flight, unanswered
    headers = {h: request.headers[h] for h in FORWARDED_HEADERS if h in request.headers}
    url = request.app[UPSTREAM] + request.path_qs
    async with request.app[SESSION].request(
        request.method, url, data=body, headers=headers, allow_redirects=False
    ) as upstream:
        payload = await upstream.read()
        return SavedResponse(
            status=upstream.status,
            content_type=upstream.headers.get("Content-Type", "application/json"),
            body=payload,
            request_id="req_" + secrets.token_hex(7),
        )


def _to_response(saved: SavedResponse, *, replayed: bool, key: str | None) -> web.Response:
    response = web.Response(status=saved.status, body=saved.body)
    response.headers["Content-Type"] = saved.content_type
    response.headers["Request-Id"] = saved.request_id
    if key is not None:
        response.headers["Idempotency-Key"] = key
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
        response.headers["Original-Request"] = saved.request_id
        response.headers["Request-Id"] = "req_" + secrets.token_hex(7)
    return response


async def _execute(
    request: web.Request, body: bytes, key: str | None, entry: dict[str, Any], delay: float
) -> web.Response:
    """Forward once per key; replay or refuse repeats (Stripe's idempotency rules)."""
    if request.method != "POST" or key is None:
        entry["forwarded"] = True
        return _to_response(await _forward(request, body, delay), replayed=False, key=None)
    if len(key) > MAX_KEY_LENGTH:
        return stripe_error(
            400,
            "invalid_request_error",
            f"Idempotency-Key is {len(key)} characters long; at most {MAX_KEY_LENGTH} allowed.",
        )
    cache = request.app[CACHE]
    scope = request.headers.get("Authorization", "")
    fp = fingerprint(request.method, request.path, request.query_string, request.content_type, body)
    async with cache.locked(scope, key):
        saved = cache.lookup(scope, key)
        if saved is not None:
            if saved.fingerprint != fp:
                entry["idempotency"] = "mismatch"
                return stripe_error(
                    400,
                    "idempotency_error",
                    "Keys for idempotent requests can only be used with the same parameters "
                    f"they were first used with. Try using a key other than '{key}' if you "
                    "meant to execute a different request.",
                )
            entry["replayed"] = True
            return _to_response(saved.response, replayed=True, key=key)
        entry["forwarded"] = True
        response = await _forward(request, body, delay)
        if should_save(response.status):
            cache.save(scope, key, fp, response)
        return _to_response(response, replayed=False, key=key)


async def handle_api(request: web.Request) -> web.StreamResponse:
    """Every Stripe API call: log, maybe fault, dedupe, forward."""
    body = await request.read()
    key = request.headers.get("Idempotency-Key")
    entry: dict[str, Any] = {
        "method": request.method,
        "path": request.path,
        "idempotency_key": key,
        "status": None,
        "upstream_status": None,
        "forwarded": False,
        "replayed": False,
        "fault": None,
        "connection": request.app[CONNECTIONS].number(request),
    }
    request.app[LOG].append(entry)
    fault = request.app[FAULTS].take(request.method, request.path)
    if fault is not None:
        entry["fault"] = fault.fault
    if fault is not None and fault.fault in ("429", "500", "503", "decline", "reset", "timeout"):
        if fault.fault == "429":
            response = stripe_error(429, "invalid_request_error", RATE_LIMIT_MESSAGE, "rate_limit")
        elif fault.fault == "decline":
            decline_code = fault.decline_code or "generic_decline"
            response = stripe_error(
                402,
                "card_error",
                DECLINE_MESSAGES.get(decline_code, "Your card was declined."),
                "card_declined",
                decline_code=decline_code,
            )
        elif fault.fault in ("500", "503"):
            response = stripe_error(
                int(fault.fault), "api_error", f"Injected sandbox fault: HTTP {fault.fault}."
            )
        else:  # reset, timeout: no response at all
            if fault.fault == "timeout":
                await _hold(request, fault.seconds)
            _reset_connection(request)
            return web.Response()
        entry["status"] = response.status
        return response
    delay = fault.seconds if fault is not None and fault.fault == "delay" else 0.0
    response = await _execute(request, body, key, entry, delay)
    entry["upstream_status"] = response.status if entry["forwarded"] else None
    if fault is not None and fault.fault == "drop_after":
        # the server acted (and the idempotency cache saved it); the client hears nothing
        _reset_connection(request)
        return web.Response()
    entry["status"] = response.status
    return response


def _counts(log: list[dict[str, Any]]) -> dict[str, Any]:
    faults = Counter(e["fault"] for e in log if e["fault"])
    routes = Counter(f"{e['method']} {e['path']}" for e in log)
    return {
        "total": len(log),
        "forwarded": sum(1 for e in log if e["forwarded"]),
        "replayed": sum(1 for e in log if e["replayed"]),
        "faults": dict(faults),
        "routes": dict(routes),
    }


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.read() or b"{}")
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not JSON: {exc}"}),
            content_type="application/json",
        ) from exc
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "body must be a JSON object"}),
            content_type="application/json",
        )
    return data


async def get_requests(request: web.Request) -> web.Response:
    log = request.app[LOG]
    return web.json_response({"counts": _counts(log), "requests": log})


async def post_fault(request: web.Request) -> web.Response:
    try:
        fault = request.app[FAULTS].add(await _json_body(request))
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"fault": fault.to_dict()})


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[FAULTS].armed()})


async def delete_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].clear()
    return web.json_response({"faults": []})


async def post_clock(request: web.Request) -> web.Response:
    advance = (await _json_body(request)).get("advance")
    if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
        return web.json_response(
            {"error": f"advance: must be a non-negative number of seconds (got {advance!r})"},
            status=400,
        )
    request.app[CACHE].advance(float(advance))
    return web.json_response({"now": request.app[CACHE].now()})


async def post_reset(request: web.Request) -> web.Response:
    """Flush localstripe (its DELETE /_config/data route) and all layer state."""
    async with request.app[SESSION].delete(request.app[UPSTREAM] + "/_config/data") as r:
        if r.status != 200:
            return web.json_response({"error": f"localstripe flush: HTTP {r.status}"}, status=502)
    request.app[CACHE].clear()
    request.app[FAULTS].clear()
    request.app[LOG].clear()
    if ON_RESET in request.app:
        request.app[ON_RESET]()
    return web.json_response({"reset": True})


async def get_health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "upstream": request.app[UPSTREAM]})


def build_app(upstream: str, on_reset: Callable[[], None] | None = None) -> web.Application:
    """The layer's aiohttp app, forwarding to localstripe at ``upstream``."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    app[UPSTREAM] = upstream.rstrip("/")
    app[CACHE] = IdempotencyCache()
    app[FAULTS] = FaultTable()
    app[LOG] = []
    app[CONNECTIONS] = Connections()
    app[STOPPING] = asyncio.Event()
    if on_reset is not None:
        app[ON_RESET] = on_reset

    async def session_ctx(app: web.Application) -> Any:
        async with ClientSession(timeout=ClientTimeout(total=60)) as session:
            app[SESSION] = session
            yield

    async def on_shutdown(app: web.Application) -> None:
        app[STOPPING].set()

    app.cleanup_ctx.append(session_ctx)
    app.on_shutdown.append(on_shutdown)
    routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]] = [
        ("GET", "/_sandbox/health", get_health),
        ("GET", "/_sandbox/requests", get_requests),
        ("POST", "/_sandbox/faults", post_fault),
        ("GET", "/_sandbox/faults", get_faults),
        ("DELETE", "/_sandbox/faults", delete_faults),
        ("POST", "/_sandbox/clock", post_clock),
        ("POST", "/_sandbox/reset", post_reset),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
    app.router.add_route("*", "/v1/{tail:.*}", handle_api)
    return app
