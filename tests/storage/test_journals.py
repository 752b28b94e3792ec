"""One open journal per path per process (engine.storage.journals) for the Python API."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

import engine
from engine.errors import SopError
from engine.storage.journal import Journal
from engine.storage.journals import IDLE_LIMIT, JOURNALS, Journals

SOP = """\
# Counter

**Version**: 1.0.0

## Overview

Five side effects in a row.

## Parameters

### Required

- **who** (string): Who counts

## Steps

### 1. Count

**Actions**:
- MUST count 1
- MUST count 2
- MUST count 3
- MUST count 4
- MUST count 5
"""


def test_one_journal_per_path_until_its_file_goes(tmp_path: Path) -> None:
    journals = Journals()
    first = journals.acquire(tmp_path / "a.db")
    journals.release(first)
    assert not (tmp_path / "a.db").exists()  # opened lazily: nothing written yet
    with journals.using(tmp_path / "a.db") as again:
        assert again is first
        again.append("r", "note")
    with journals.using(tmp_path / "sub" / ".." / "a.db") as same:
        assert same is first  # one entry per absolute path
    with journals.using(tmp_path / "b.db") as other:
        assert other is not first
    (tmp_path / "a.db").unlink()  # deleted (or replaced) since: a fresh journal
    with journals.using(tmp_path / "a.db") as fresh:
        assert fresh is not first
        assert fresh.runs() == []
    with pytest.raises(SopError, match="is closed"):  # the old one was closed
        first.runs()
    journals.close()


def test_idle_journals_beyond_the_limit_are_closed_oldest_first(tmp_path: Path) -> None:
    journals = Journals()
    held = journals.acquire(tmp_path / "held.db")  # in use: never closed under a run
    opened = []
    for n in range(IDLE_LIMIT + 2):
        with journals.using(tmp_path / f"{n}.db") as store:
            store.append("r", "note")
            opened.append(store)
    with pytest.raises(SopError, match="is closed"):
        opened[0].runs()
    assert opened[-1].runs() == []
    held.append("r", "note")
    journals.release(held)
    journals.close()
    with pytest.raises(SopError, match="is closed"):
        held.append("r", "note")


def test_the_api_shares_one_journal_between_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads running through ``engine.run`` on the same default journal: every
    run succeeds, each action once, and the one hash chain verifies."""
    (tmp_path / "sops").mkdir()
    (tmp_path / "sops" / "counter.sop.md").write_text(SOP, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SOP_JOURNAL", raising=False)
    registry = engine.Registry()
    effects: list[tuple[str, int]] = []
    lock = threading.Lock()

    @registry.action("count {n:d}")
    def count(ctx: Any, n: int) -> None:
        with lock:
            effects.append((ctx.params["who"], n))
        ctx.record("count", {"n": n})

    runs_each = 20
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker(who: str) -> None:
        start.wait()
        try:
            for i in range(runs_each):
                result = engine.run("counter", {"who": f"{who}{i}"}, registry=registry)
                assert result.ok, result.errors
        except BaseException as exc:  # reported below, with the thread's name
            failures.append(exc)

    threads = [threading.Thread(target=worker, args=(who,)) for who in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(effects) == sorted(
        (f"{who}{i}", n) for who in "ab" for i in range(runs_each) for n in range(1, 6)
    )
    JOURNALS.close()  # what atexit does; then read the file afresh
    with Journal(tmp_path / ".sop" / "journal.db") as journal:
        assert journal.verify() == []
        runs = journal.runs()
        assert len(runs) == 2 * runs_each
        assert {row.status for row in runs} == {"succeeded"}
        assert all(journal.lease(row.run_id) is None for row in runs)
        assert all(len(journal.records(row.run_id)) == 5 for row in runs)


def test_a_forked_child_opens_its_own_journal(tmp_path: Path) -> None:
    journals = Journals()
    with journals.using(tmp_path / "j.db") as parents:
        parents.append("parent", "note")
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a journal of its own, the parent's left alone
        code = 1
        try:
            with journals.using(tmp_path / "j.db") as childs:
                childs.append("child", "note")
                code = 0 if childs is not parents else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    assert os.read(read, 1) == b"\x00"
    os.waitpid(pid, 0)
    with journals.using(tmp_path / "j.db") as again:
        assert again is parents
        again.append("parent", "note")
        assert [event.run_id for event in again.events("parent")] == ["parent", "parent"]
        assert [event.run_id for event in again.events("child")] == ["child"]
    journals.close()
