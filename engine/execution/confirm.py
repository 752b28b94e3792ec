"""Confirmation tokens: a person's go-ahead, bound to one run and one exact operation.

The token itself is shown once (in the paused result); the journal keeps only its
sha256 and the hash of the operation it confirms. A token is valid for the run it
was issued by, until ``SOP_CONFIRM_TTL_SECONDS`` (default 86400) pass, once. Spending
it journals who decided (``--as NAME``, default the OS user) and how.

An ``Approval`` is the same go-ahead given by a person logged into ``sop ui``: the page
authorises them by login, so they never handle the token; the pending confirmation is
spent by its hash, with the same checks.
"""

from __future__ import annotations

import getpass
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from engine.canonical import canonical
from engine.errors import SopError, UsageError
from engine.execution.settings import seconds
from engine.storage.base import Confirmation, Store

PREFIX = "sopc_"
DEFAULT_TTL = 86400.0


@dataclass(frozen=True)
class Approval:
    """A logged-in person's go-ahead for a run's pending operation (no token involved)."""

    by: str
    reason: str | None = None


def who(by: str | None) -> str:
    """The person deciding: ``by`` if given, else the OS user (``--as`` overrides it)."""
    if by is not None and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in the environment or the passwd file
        return "unknown"


def decision(by: str, kind: str, reason: str | None = None) -> dict[str, str]:
    """What a ``confirmation_used`` event says about the person and their decision."""
    data = {"by": by, "decision": kind}
    if reason:
        data["reason"] = reason
    return data


def new_token() -> str:
    """A fresh unguessable token (URL-safe; never a long digit run, so redaction leaves it be)."""
    return PREFIX + secrets.token_urlsafe(24)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode("utf-8")).hexdigest()


def operation_hash(run_id: str, operation: Mapping[str, Any]) -> str:
    """Hash of the exact operation, salted with the run id (a bare amount hash is guessable)."""
    return hashlib.sha256(
        (run_id + "\x1f" + canonical(dict(operation))).encode("utf-8")
    ).hexdigest()


def ttl_seconds() -> float:
    return seconds("SOP_CONFIRM_TTL_SECONDS", DEFAULT_TTL)


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds")


def lookup(journal: Store, token: str) -> Confirmation:
    """The confirmation a token belongs to; SopError when no run issued it."""
    if not token or not token.strip():
        raise UsageError("--confirm: the token is empty")
    found = journal.confirmation(token_hash(token))
    if found is None:
        raise SopError("confirmation token does not match any paused run in this journal")
    return found


def spend(
    journal: Store,
    token: str | Approval,
    *,
    run_id: str,
    action_id: str | None,
    token_hash_expected: str | None,
    by: str | None = None,
) -> Confirmation:
    """Check a token (or a logged-in person's ``Approval``) against the run's pending
    confirmation and use it up (single-use), journaling who confirmed."""
    if isinstance(token, Approval):
        if token_hash_expected is None:
            raise SopError(f"run {run_id} is not waiting for confirmation")
        found_by_hash = journal.confirmation(token_hash_expected)
        if found_by_hash is None:
            raise SopError(f"run {run_id}: its pending confirmation is missing (journal damaged?)")
        found, data = found_by_hash, decision(token.by, "confirmed", token.reason)
    else:
        found, data = lookup(journal, token), decision(who(by), "confirmed")
    if found.run_id != run_id:
        raise SopError(
            f"confirmation token does not match run {run_id} (it was issued by another run)"
        )
    if found.used_at is not None:
        raise SopError("confirmation token already used")
    if token_hash_expected is not None and found.token_hash != token_hash_expected:
        raise SopError(
            f"confirmation token is for an earlier pause of run {run_id}, not the pending operation"
        )
    if action_id is not None and found.action_id != action_id:
        raise SopError(f"confirmation token does not match the pending operation of run {run_id}")
    if time.time() > found.expires_at:
        raise SopError(f"confirmation token expired at {iso(found.expires_at)}; start a new run")
    if not journal.use_confirmation(found.token_hash, data):
        raise SopError("confirmation token already used")
    return found


def confirmed(journal: Store, run_id: str, token_hash: str | None) -> bool:
    """Whether the pending confirmation ``token_hash`` of ``run_id`` was spent by a person's
    go-ahead (not a rejection): the run may then go on without the token."""
    if token_hash is None:
        return False
    return any(
        event.type == "confirmation_used"
        and event.data.get("token_hash") == token_hash
        and event.data.get("decision") == "confirmed"
        for event in journal.events(run_id)
    )
