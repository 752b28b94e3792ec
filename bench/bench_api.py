"""Python API benchmark: a run with the default journal against an explicit one.

``engine.run(name, params)`` without ``journal=`` takes the process's open journal for
the default path (engine.storage.journals); before, it opened SQLite, checked the
schema and closed it again on every call. The seed SOP (every line bound to a no-op
handler, operation=charge) runs through the public API with the default journal and
with an explicit ``Journal`` opened once, one run of each in turn so both see the same
load on this shared VM; then, apart, opening and closing a ``Journal`` per run (what
the default used to cost). Target: default <= 1.2x explicit.

Run: .venv/bin/python bench/bench_api.py [runs]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from report import summary_line  # bench/ is first on sys.path when run as a script
from seed_noop import PARAMS, SOP, registry_for_every_line

import engine
from engine.storage.journal import Journal
from engine.storage.journals import JOURNALS

TARGET_RATIO = 1.2


def _ms(run: Callable[[], engine.RunResult]) -> float:
    started = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - started
    assert result.ok, result.errors
    return elapsed * 1e3


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 150
    os.environ.setdefault("STRIPE_API_KEY", "sk_test_bench")
    os.environ.pop("SOP_JOURNAL", None)
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        (project / "sops").mkdir()  # a project: the default journal is .sop/journal.db here
        os.chdir(project)
        registry = registry_for_every_line()
        explicit = Journal(project / "explicit.db")
        reopened = project / "reopened.db"

        def by_default() -> engine.RunResult:
            return engine.run(SOP, PARAMS, registry=registry)

        def by_explicit() -> engine.RunResult:
            return engine.run(SOP, PARAMS, registry=registry, journal=explicit)

        def by_reopening() -> engine.RunResult:
            with Journal(reopened) as journal:
                return engine.run(SOP, PARAMS, registry=registry, journal=journal)

        ways = {"default journal": by_default, "explicit journal": by_explicit}
        for run in [*ways.values(), by_reopening] * 3:  # warm-up: plans cached, files made
            _ms(run)
        times: dict[str, list[float]] = {name: [] for name in ways}
        order = list(ways)
        for _ in range(runs):  # one run each way in turn, so both see the same load
            order = order[1:] + order[:1]  # and each goes first in turn
            for name in order:
                times[name].append(_ms(ways[name]))
        # apart: closing a journal checkpoints and syncs, which would slow the next run
        times["open+close per run (before)"] = [_ms(by_reopening) for _ in range(runs // 3)]
        started = time.perf_counter()
        for _ in range(1000):  # what the default adds to a run: find, check out, give back
            JOURNALS.release(JOURNALS.acquire())
        lookup_us = (time.perf_counter() - started) / 1000 * 1e6
        actions = len(by_explicit().actions)
        with JOURNALS.using() as journal:
            intact = not journal.verify()
        explicit.close()
        JOURNALS.close()
        os.chdir("/")

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["default journal"] / medians["explicit journal"]
    print(f"{SOP}: {actions} actions per run; medians of {runs} interleaved runs each")
    for name, ms in medians.items():
        print(f"  {name:<30} {ms:8.2f} ms per run")
    print(f"  default journal lookup         {lookup_us:8.1f} us per run")
    print(f"  default / explicit: {ratio:.2f}x (target <= {TARGET_RATIO}x); chain intact: {intact}")
    print(
        summary_line(
            "api_default_journal",
            ratio,
            f"<={TARGET_RATIO:g}",
            what="a run through the API, default vs explicit journal",
            measured=f"{medians['default journal']:.2f} ms/run",
            peer=f"explicit journal {medians['explicit journal']:.2f} ms/run",
        )
    )
    return 0 if intact else 1  # a broken chain is a failure; a missed ratio is reported


if __name__ == "__main__":
    sys.exit(main())
