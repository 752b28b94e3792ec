"""``sop ui``'s rules through Starlette's TestClient (fast): nothing anonymous, a CSRF
token on every POST, the confirmation token never on a page, decisions journaled with
the logged-in person."""

from __future__ import annotations

import dataclasses
import re

import pytest
from starlette.testclient import TestClient

from engine.storage.journal import Journal
from engine.ui.app import Settings, create_app
from tests.support.postgres import Postgres
from tests.ui.conftest import Demo

SECRET = "correct-horse-battery"


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


@pytest.fixture
def client(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.chdir(demo.root)
    monkeypatch.syspath_prepend(str(demo.root))
    monkeypatch.setenv("DEMO_DIR", str(demo.root))
    return TestClient(create_app(Settings(journal=demo.journal, secret=SECRET)))


def _login(client: TestClient, secret: str = SECRET) -> int:
    page = client.get("/login")
    done = client.post(
        "/login",
        data={"name": "alice", "secret": secret, "csrf": _csrf(page.text)},
        follow_redirects=False,
    )
    return done.status_code


def test_nothing_is_served_or_done_without_login(demo: Demo, client: TestClient) -> None:
    run_id = demo.paused_run()
    for path in ("/", "/inbox", f"/runs/{run_id}", "/sops/refund-demo"):
        response = client.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/login")
    login_page = client.get("/login")
    refused = client.post(
        f"/runs/{run_id}/approve", data={"csrf": _csrf(login_page.text)}, follow_redirects=False
    )
    assert refused.status_code == 403 and "log in first" in refused.text
    assert _login(client, secret="wrong-secret-value") == 403
    assert client.get("/", follow_redirects=False).status_code == 303
    with Journal(demo.journal) as jr:
        assert jr.run(run_id).status == "paused"  # type: ignore[union-attr]
    assert demo.refunds() == []


def test_login_needs_the_csrf_token_of_its_form(client: TestClient) -> None:
    client.get("/login")
    done = client.post("/login", data={"name": "a", "secret": SECRET}, follow_redirects=False)
    assert done.status_code == 403 and "CSRF" in done.text


def test_a_logged_in_post_without_csrf_is_refused(demo: Demo, client: TestClient) -> None:
    run_id = demo.paused_run()
    anonymous = client.cookies.get("sop_ui_session")
    assert _login(client) == 303
    assert client.cookies.get("sop_ui_session") != anonymous  # a fresh session id
    for data in ({"reason": "x"}, {"reason": "x", "csrf": "forged"}):
        refused = client.post(f"/runs/{run_id}/reject", data=data, follow_redirects=False)
        assert refused.status_code == 403 and "CSRF" in refused.text
    with Journal(demo.journal) as jr:
        assert jr.run(run_id).status == "paused"  # type: ignore[union-attr]


def test_inbox_hides_the_token_and_decisions_are_journaled(demo: Demo, client: TestClient) -> None:
    approve_id, reject_id = demo.paused_run(), demo.paused_run(20000)
    assert _login(client) == 303
    inbox = client.get("/inbox")
    assert approve_id in inbox.text and reject_id in inbox.text
    assert "Refund above $100: confirm" in inbox.text
    with Journal(demo.journal) as jr:
        hashes = [e.data["token_hash"] for e in jr.events(approve_id) if "token_hash" in e.data]
    assert hashes and "sopc_" not in inbox.text and hashes[0] not in inbox.text
    assert "content-security-policy" in inbox.headers
    csrf = _csrf(inbox.text)
    empty = client.post(f"/runs/{reject_id}/reject", data={"csrf": csrf, "reason": " "})
    assert empty.status_code == 409 and "give a reason" in empty.text
    done = client.post(f"/runs/{reject_id}/reject", data={"csrf": csrf, "reason": "duplicate"})
    assert done.status_code == 200 and "rejected by alice" in done.text
    done = client.post(f"/runs/{approve_id}/approve", data={"csrf": csrf, "reason": "ok"})
    assert done.status_code == 200 and "approved by alice" in done.text
    assert demo.refunds() == [approve_id]
    with Journal(demo.journal) as jr:
        assert jr.run(reject_id).status == "rejected"  # type: ignore[union-attr]
        assert jr.run(approve_id).status == "succeeded"  # type: ignore[union-attr]
        used = {
            e.run_id: (e.data["by"], e.data["decision"])
            for run in (approve_id, reject_id)
            for e in jr.events(run)
            if e.type == "confirmation_used"
        }
        assert jr.verify() == []
    assert used == {approve_id: ("alice", "confirmed"), reject_id: ("alice", "rejected")}
    again = client.post(f"/runs/{approve_id}/approve", data={"csrf": csrf})
    assert again.status_code == 409 and "already succeeded" in again.text
    assert demo.refunds() == [approve_id]


def test_the_page_serves_and_decides_runs_on_a_postgresql_journal(
    demo: Demo, postgres_cluster: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = dataclasses.replace(demo, journal=postgres_cluster.database())
    monkeypatch.chdir(demo.root)
    monkeypatch.syspath_prepend(str(demo.root))
    monkeypatch.setenv("DEMO_DIR", str(demo.root))
    client = TestClient(create_app(Settings(journal=demo.journal, secret=SECRET)))
    run_id = demo.paused_run()
    assert _login(client) == 303
    inbox = client.get("/inbox")
    assert run_id in inbox.text
    done = client.post(f"/runs/{run_id}/approve", data={"csrf": _csrf(inbox.text), "reason": "ok"})
    assert done.status_code == 200 and "approved by alice" in done.text
    assert demo.refunds() == [run_id]
    with Journal(demo.journal) as jr:
        assert jr.run(run_id).status == "succeeded"  # type: ignore[union-attr]
        assert jr.verify() == []
    assert not (demo.root / "postgresql:").exists()
