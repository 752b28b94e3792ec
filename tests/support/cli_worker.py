"""A long-lived ``sop`` worker: one JSON task per stdin line, one JSON result per stdout line.

Each task is ``{"argv": [...], "trace": bool}``; ``engine.cli.main.main`` runs it in this
process (no interpreter start per call) with stdout/stderr captured. The result says its
exit code, its output, how long it took, the peak of Python allocations during the call
(tracemalloc, when the task asks: tracing slows a call about 5x) and the worker's peak
RSS. The parent (``standing_proof.CliWorker``) kills and replaces the worker when a call
overruns its time bound, so one hanging input cannot stop the suite.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
import tracemalloc

from standing_proof import sop_inproc


def main() -> None:
    out = sys.stdout
    sop_inproc("schema", "payment-processing")  # imports and caches, outside the bound
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        task = json.loads(line)
        if task.get("trace"):
            tracemalloc.start()
        started = time.perf_counter()
        crash = None
        try:
            code, stdout, stderr = sop_inproc(*task["argv"])
        except BaseException:  # the point: any exception escaping main() is a finding
            code, stdout, stderr = -1, "", ""
            crash = traceback.format_exc()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
        tracemalloc.stop()
        result = {
            "code": code,
            "stdout": stdout[-2000:],
            "stderr": stderr[-2000:],
            "crash": crash,
            "seconds": seconds,
            "peak_bytes": peak,
            "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }
        out.write(json.dumps(result) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
