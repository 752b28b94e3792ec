"""Shared fixtures: the local Stripe sandbox (real localstripe) and fast retries."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from handlers.sandbox import Sandbox
from tests.support.postgres import Postgres

# The journal key that seals redacted parameters (engine.execution.seal): one per test
# session, never the user's own ~/.config/sop-engine/journal.key. Subprocesses inherit it.
os.environ.setdefault("SOP_KEY_FILE", os.path.join(tempfile.mkdtemp(), "journal.key"))
# A journal run outside any project lands in the user's data directory
# (engine.storage.location): one per test session, never the user's own.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp()


@pytest.fixture(scope="session")
def stripe_sandbox() -> Iterator[Sandbox]:
    """One sandbox process for the whole session (starts in about half a second)."""
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture
def sandbox(stripe_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The session sandbox, emptied (data, idempotency keys, faults, log) for this test.

    Also points STRIPE_API_BASE / STRIPE_API_KEY at it for the test's duration.
    """
    stripe_sandbox.reset()
    for name, value in stripe_sandbox.env().items():
        monkeypatch.setenv(name, value)
    return stripe_sandbox


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry backoff of 10 ms instead of the default, so retry tests stay fast."""
    monkeypatch.setenv("SOP_RETRY_BASE_SECONDS", "0.01")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Postgres]:
    """One throwaway PostgreSQL cluster for the session (tests/support/postgres.py); each
    test takes a fresh database from it with ``database()``."""
    with Postgres() as cluster:
        yield cluster
