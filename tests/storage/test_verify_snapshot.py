"""``verify`` reads one snapshot: another process committing between its reads is not
tampering. Workers on one PostgreSQL journal hit this: a run refused as "events deleted
from the end" because the head anchor was read after another worker's commit."""

from __future__ import annotations

import threading

from engine.storage.journal import Journal


def _started(journal: Journal, run_id: str) -> None:
    journal.start_run(
        run_id,
        sop="demo",
        sop_path=None,
        version="1",
        content_hash=None,
        params={"n": 1},
        handlers=[],
    )
    journal.append(run_id, "plan", data={}, status="running")


def test_verify_run_while_another_connection_appends(location: str) -> None:
    with Journal(location) as reader, Journal(location) as writer:
        _started(reader, "a" * 32)
        _started(writer, "b" * 32)
        stop = threading.Event()

        def append() -> None:
            for _ in range(1000):  # each append moves the events and the head anchor
                if stop.is_set():
                    return
                writer.append("b" * 32, "log", data={"m": "x"}, status="running")

        thread = threading.Thread(target=append)
        thread.start()
        try:
            found = [problem for _ in range(60) for problem in reader.verify(run_id="a" * 32)]
        finally:
            stop.set()
            thread.join()
        assert found == []
        assert reader.verify() == []
