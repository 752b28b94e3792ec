"""Sessions for ``sop ui``: a login secret, per-session CSRF tokens, nothing else.

The secret is drawn at start and printed on the operator's terminal; whoever can read
it can log in (with a name, which the journal records for each approval). Sessions live
in memory and die with the server. Every comparison is constant-time.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

#: sessions kept at most (anonymous ones, made by visiting the login page, go first)
MAX_SESSIONS = 1000
COOKIE = "sop_ui_session"


@dataclass
class Session:
    sid: str
    csrf: str
    person: str | None = None  # logged in as


def new_secret() -> str:
    return secrets.token_urlsafe(18)


class Sessions:
    """The server's sessions, keyed by the unguessable id in the session cookie."""

    def __init__(self, secret: str) -> None:
        if len(secret) < 12:
            raise ValueError("the login secret must be at least 12 characters")
        self._secret = secret
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def _add(self, person: str | None) -> Session:
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), person)
        with self._lock:
            self._sessions[session.sid] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return session

    def get(self, sid: str | None) -> Session | None:
        if not sid:
            return None
        with self._lock:
            return self._sessions.get(sid)

    def anonymous(self, sid: str | None) -> Session:
        """The caller's session, or a new anonymous one (it holds the login form's CSRF)."""
        return self.get(sid) or self._add(None)

    def login(self, session: Session, secret: str, person: str) -> Session | None:
        """A new logged-in session (a fresh id: no fixation) when the secret is right."""
        if not hmac.compare_digest(secret.encode(), self._secret.encode()):
            return None
        with self._lock:
            self._sessions.pop(session.sid, None)
        return self._add(person)

    def logout(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.sid, None)


def csrf_ok(session: Session | None, token: str | None) -> bool:
    return (
        session is not None
        and bool(token)
        and hmac.compare_digest(session.csrf.encode(), (token or "").encode())
    )
