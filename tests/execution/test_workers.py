"""engine.execution.workers: runs borrow parked threads; a stuck job never holds up the next one."""

from __future__ import annotations

import threading

from engine.execution import workers


def _run(job_body: threading.Event | None = None) -> threading.Thread:
    """Submit a job and return the thread that ran it (waiting for it to start)."""
    ran: list[threading.Thread] = []
    started = threading.Event()

    def job() -> None:
        ran.append(threading.current_thread())
        started.set()
        if job_body is not None:
            job_body.wait(10)

    workers.submit(job)
    assert started.wait(10)
    return ran[0]


def test_a_parked_worker_is_reused() -> None:
    first = _run()
    # the worker parks itself after its job; give it the moment it needs
    for _ in range(200):
        with workers._idle_lock:
            if first in workers._idle:
                break
        threading.Event().wait(0.005)
    assert _run() is first


def test_a_stuck_job_does_not_hold_up_the_next() -> None:
    release = threading.Event()
    stuck = _run(release)
    other = _run()
    assert other is not stuck and stuck.is_alive()
    release.set()


def test_idle_workers_are_bounded() -> None:
    releases = [threading.Event() for _ in range(workers.MAX_IDLE + 3)]
    threads = [_run(release) for release in releases]
    assert len(set(threads)) == len(threads)
    for release in releases:
        release.set()
    for _ in range(400):
        with workers._idle_lock:
            parked = len(workers._idle)
        if parked == workers.MAX_IDLE and sum(t.is_alive() for t in threads) <= workers.MAX_IDLE:
            break
        threading.Event().wait(0.005)
    assert parked == workers.MAX_IDLE
    assert sum(t.is_alive() for t in threads) <= workers.MAX_IDLE
