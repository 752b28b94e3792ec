"""The behave side of ``bench/bench_bind.py``; runs in the bench virtualenv.

``behave`` is never a project dependency: the bench starts this script with
``.venv-bench``'s python (installing behave there on first use). Protocol over stdin and
stdout, one JSON line each way, so the bench can alternate behave with the engine in
the same run:

* first line ``{"patterns": [...], "lines": [...]}``: register every pattern as a
  parse-style step definition (behave's default matcher) in one
  ``behave.step_registry.StepRegistry``; answer ``{"register_ms": ..., "rejected": n,
  "version": ...}`` (``rejected``: refused as ambiguous, as behave does);
* then each line ``pass``: ``find_match`` every line once; answer ``{"us_per_line": ...,
  "bound": n}``. CPU time of this process (``time.process_time``).
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

from behave.matchers import use_step_matcher  # type: ignore[import-not-found]
from behave.step_registry import AmbiguousStep, StepRegistry  # type: ignore[import-not-found]


def _step(index: int) -> Any:
    def step(context: Any, **captures: Any) -> None:
        return None

    step.__name__ = f"step_{index}"
    return step


def main() -> int:
    use_step_matcher("parse")
    setup = json.loads(sys.stdin.readline())
    registry = StepRegistry()
    rejected = 0
    start = time.process_time()
    for index, pattern in enumerate(setup["patterns"]):
        try:
            registry.add_step_definition("step", pattern, _step(index))
        except AmbiguousStep:
            rejected += 1
    register_s = time.process_time() - start
    steps = [SimpleNamespace(step_type="given", name=line) for line in setup["lines"]]
    answer = {"register_ms": register_s * 1e3, "rejected": rejected, "version": version("behave")}
    print(json.dumps(answer), flush=True)
    for command in sys.stdin:
        if command.strip() != "pass":
            break
        start = time.process_time()
        bound = sum(1 for step in steps if registry.find_match(step) is not None)
        per_line = (time.process_time() - start) / len(steps)
        print(json.dumps({"us_per_line": per_line * 1e6, "bound": bound}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
