"""The ``sop ui`` web application (Starlette): pages, login, CSRF, approvals.

Rules every route keeps: no page but the login form without a logged-in session (a GET
is sent to /login, a POST refused with 403); every POST carries the session's CSRF
token (403 otherwise, nothing done); responses forbid scripts, framing and caching.
Approving or rejecting runs here is authorised by the login, journaled with the person,
and never involves the confirmation token (engine.execution.decide).
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from engine.errors import SopError, UsageError
from engine.storage.journal import Journal
from engine.storage.location import exists
from engine.ui import views
from engine.ui.auth import COOKIE, Session, Sessions, csrf_ok

MAX_FORM_BYTES = 65536
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self';"
        " frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Settings:
    journal: str | Path  # a file, or a postgresql:// URL
    secret: str
    handlers: list[str] = field(default_factory=list)  # --handlers, for approved runs


Page = Callable[[Request], Awaitable[Response]]


def create_app(settings: Settings) -> Starlette:
    sessions = Sessions(settings.secret)
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )

    def page(name: str, session: Session, code: int = 200, **context: Any) -> Response:
        html = templates.get_template(name).render(session=session, **context)
        response = HTMLResponse(html, status_code=code, headers=_HEADERS)
        _cookie(response, session)
        return response

    def journal() -> Journal | None:
        return Journal(settings.journal) if exists(settings.journal) else None

    def logged_in(handler: Callable[[Request, Session], Awaitable[Response]]) -> Page:
        async def guarded(request: Request) -> Response:
            session = sessions.get(request.cookies.get(COOKIE))
            if request.method == "POST":
                form = await _form(request)
                if session is None or session.person is None:
                    return _refused("log in first")
                if not csrf_ok(session, form.get("csrf")):
                    return _refused("missing or wrong CSRF token")
                request.state.form = form
            elif session is None or session.person is None:
                return RedirectResponse("/login", status_code=303, headers=_HEADERS)
            return await handler(request, session)

        return guarded

    async def login_form(request: Request) -> Response:
        session = sessions.anonymous(request.cookies.get(COOKIE))
        return page("login.html", session, error=None)

    async def login(request: Request) -> Response:
        form = await _form(request)
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None or not csrf_ok(session, form.get("csrf")):
            return _refused("missing or wrong CSRF token")
        name = (form.get("name") or "").strip()
        if not name:
            return page("login.html", session, 400, error="give your name (it is journaled)")
        fresh = sessions.login(session, form.get("secret") or "", name[:100])
        if fresh is None:
            return page("login.html", session, 403, error="wrong secret")
        response = RedirectResponse("/", status_code=303, headers=_HEADERS)
        _cookie(response, fresh)
        return response

    async def logout(request: Request, session: Session) -> Response:
        sessions.logout(session)
        return RedirectResponse("/login", status_code=303, headers=_HEADERS)

    async def home(request: Request, session: Session) -> Response:
        sop, status = request.query_params.get("sop"), request.query_params.get("status")

        def read() -> dict[str, Any]:
            jr = journal()
            try:
                return {
                    "sops": views.sops(),
                    "runs": views.runs(jr, sop, status),
                    "health": views.health(settings.journal),
                }
            finally:
                if jr is not None:
                    jr.close()

        found = await run_in_threadpool(read)
        return page("home.html", session, sop=sop or "", status=status or "",
                    statuses=views.STATUSES, **found)  # fmt: skip

    async def sop_page(request: Request, session: Session) -> Response:
        from engine.language.catalog import load
        from engine.ui.graph import draw

        name = request.path_params["name"]
        try:
            sop = await run_in_threadpool(load, name)
        except UsageError as exc:
            return page("error.html", session, 404, message=str(exc))
        drawn = await run_in_threadpool(draw, sop)
        return page("sop.html", session, sop=sop, drawn=drawn)

    async def run_view(request: Request, session: Session) -> Response:
        run_id = request.path_params["run_id"]

        def read() -> views.RunPage | None:
            jr = journal()
            if jr is None:
                return None
            with jr:
                row = jr.run(run_id)
                return views.run_page(jr, row) if row is not None else None

        found = await run_in_threadpool(read)
        if found is None:
            return page("error.html", session, 404, message=f"unknown run '{run_id}'")
        return page("run.html", session, run=found, note=request.query_params.get("note"))

    async def inbox(request: Request, session: Session) -> Response:
        def read() -> list[views.Waiting]:
            jr = journal()
            if jr is None:
                return []
            with jr:
                return views.inbox(jr)

        waiting = await run_in_threadpool(read)
        return page("inbox.html", session, waiting=waiting, error=None)

    async def decide(request: Request, session: Session) -> Response:
        run_id, verdict = request.path_params["run_id"], request.path_params["verdict"]
        reason = (request.state.form.get("reason") or "").strip() or None
        person = session.person or ""
        try:
            await run_in_threadpool(_decide, settings, run_id, verdict, person, reason)
        except (SopError, UsageError) as exc:
            waiting = await run_in_threadpool(lambda: _inbox(settings))
            return page("inbox.html", session, 409, waiting=waiting, error=str(exc))
        done = "approved" if verdict == "approve" else "rejected"
        note = urllib.parse.quote(f"{done} by {person}")
        return RedirectResponse(f"/runs/{run_id}?note={note}", status_code=303, headers=_HEADERS)

    routes = [
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logged_in(logout), methods=["POST"]),
        Route("/", logged_in(home), methods=["GET"]),
        Route("/sops/{name}", logged_in(sop_page), methods=["GET"]),
        Route("/runs/{run_id}", logged_in(run_view), methods=["GET"]),
        Route("/inbox", logged_in(inbox), methods=["GET"]),
        Route("/runs/{run_id}/{verdict:str}", logged_in(decide), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _inbox(settings: Settings) -> list[views.Waiting]:
    if not exists(settings.journal):
        return []
    with Journal(settings.journal) as jr:
        return views.inbox(jr)


def _decide(settings: Settings, run_id: str, verdict: str, person: str, reason: str | None) -> None:
    """Approve (the run then finishes here, its handlers imported as ``sop resume`` does)
    or reject, as ``person``."""
    from engine.binding.packs import load_handlers
    from engine.execution.decide import approve, reject

    if verdict not in ("approve", "reject"):
        raise UsageError(f"unknown decision '{verdict}'")
    if not exists(settings.journal):
        raise UsageError(f"unknown run '{run_id}' (no journal at {settings.journal})")
    with Journal(settings.journal) as jr:
        if jr.run(run_id) is None:
            raise UsageError(f"unknown run '{run_id}'")
        if verdict == "reject":
            if reason is None:
                raise UsageError("give a reason to reject")
            reject(run_id, reason=reason, by=person, journal=jr)
            return
        started = jr.verified_run(run_id)
        registry = load_handlers([*started.handlers, *settings.handlers], sops=(started.sop,))
        approve(run_id, by=person, reason=reason, registry=registry, journal=jr)


async def _form(request: Request) -> dict[str, str]:
    """An urlencoded form (at most MAX_FORM_BYTES), first value of each field."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}
    fields = urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {key: values[0] for key, values in fields.items()}


def _refused(why: str) -> Response:
    return HTMLResponse(f"<p>refused: {why}</p>", status_code=403, headers=_HEADERS)


def _cookie(response: Response, session: Session) -> None:
    response.set_cookie(COOKIE, session.sid, httponly=True, samesite="strict", path="/")
