"""``sop ui`` in a real browser: Debian's chromium driven by Playwright against the real
``sop ui`` process (no browser download: ``make test`` installs chromium).

Covers login, the inbox, approve, reject, approvals refused without login and without
the CSRF token, and keeps a screenshot of a run's page as a test artifact
(``SOP_TEST_ARTIFACTS``, default ``.sop/artifacts/``; the path is printed).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.ui.conftest import Demo

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"  # Debian's package (`make test` installs it)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(demo: Demo) -> Iterator[tuple[str, str]]:
    """``sop ui`` as users start it; (base URL, login secret) as it printed them."""
    port = _free_port()
    args = ["ui", "--port", str(port), "--handlers", "demohandlers", "--journal", str(demo.journal)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine", *args],
        cwd=demo.root,
        env={k: v for k, v in demo.env.items() if k != "SOP_UI_SECRET"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().split()[2]
        secret = proc.stdout.readline().rsplit(" ", 1)[1].strip()
        assert url == f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "login", timeout=5).close()
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "sop ui did not start"
                time.sleep(0.1)
        yield url, secret
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def page() -> Iterator[Page]:
    assert os.path.exists(CHROMIUM), "chromium missing: `make test` installs it (apt-get)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_operator_logs_in_approves_one_refund_and_rejects_another(
    demo: Demo, server: tuple[str, str], page: Page
) -> None:
    url, secret = server
    approve_id, reject_id = demo.paused_run(), demo.paused_run(20000)

    page.goto(url + "inbox")
    assert page.url == url + "login"  # no anonymous page
    denied = page.request.post(url + f"runs/{approve_id}/approve", form={"csrf": "guess"})
    assert denied.status == 403  # no anonymous approval

    page.fill("input[name=name]", "alice")
    page.fill("input[name=secret]", "not-the-secret")
    page.click("button[type=submit]")
    assert "wrong secret" in page.inner_text("[role=alert]")
    page.fill("input[name=name]", "alice")
    page.fill("input[name=secret]", secret)
    page.click("button[type=submit]")
    assert page.url == url
    assert approve_id in page.inner_text("#runs") and reject_id in page.inner_text("#runs")

    forged = page.request.post(url + f"runs/{approve_id}/approve", form={"reason": "x"})
    assert forged.status == 403  # logged in, but no CSRF token
    assert demo.refunds() == []

    page.goto(url + "inbox")
    assert "Refund above $100: confirm" in page.inner_text(f"#run-{approve_id}")
    assert "sopc_" not in page.content()  # the token is never on the page
    page.click(f"#run-{approve_id} form[action$='/approve'] button")
    assert page.url.startswith(url + f"runs/{approve_id}")
    assert page.inner_text("#run-status") == "succeeded"
    assert "approved by alice" in page.inner_text("[role=status]")
    assert demo.refunds() == [approve_id]

    page.goto(url + "inbox")
    page.fill(f"#run-{reject_id} form[action$='/reject'] textarea", "customer withdrew")
    page.click(f"#run-{reject_id} form[action$='/reject'] button")
    assert page.inner_text("#run-status") == "rejected"
    decisions = page.inner_text("#decisions")
    assert "alice" in decisions and "customer withdrew" in decisions
    assert "run_rejected" in page.inner_text("#timeline")
    assert demo.refunds() == [approve_id]  # the rejected refund never ran
    assert page.locator("img[alt='step graph of refund-demo']").count() == 1  # Graphviz SVG

    artifacts = Path(os.environ.get("SOP_TEST_ARTIFACTS", ROOT / ".sop" / "artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "ui-run-page.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot of a run's page: {shot}")
    assert shot.stat().st_size > 0

    page.goto(url + "inbox")
    assert page.inner_text("#empty") == "Nothing waits for approval."
    page.goto(url + "sops/refund-demo")
    assert page.locator("img[alt='step graph of refund-demo']").count() == 1
