"""Author and CI diagnostics for SOP files: what is missing, inconsistent or not enforced.

Every message says how to fix it. Codes are stable (scripts filter on them); the
parser owns SOP0xx, this module owns SOP1xx:

======  ========  ==============================================================
code    severity  meaning
======  ========  ==============================================================
SOP101  error     a required section is missing (Overview, Steps)
SOP102  error     Examples have Input but there is no Parameters section
SOP103  error     steps are not numbered 1..N in order
SOP104  warning   a step has no bindable line (no action, constraint or check)
SOP105  error     lists or quotes nested deeper than MAX_NESTING levels
SOP106  error     steps or keyword lines under a section that is not Steps (a "## Step"
                  typo): numbered step headings (``### 2. ...``) anywhere else, or
                  MUST/SHOULD/MAY lines under a title close to "Steps"; they never run
SOP107  error     the SOP has steps but not one action or check: nothing would run
SOP110  warning   MUST NOT / SHOULD NOT without a reason ("because ...") in an Agent
                  SOP format file (one with ``**Constraints:**`` blocks); info elsewhere
SOP120  error     a parameter's Format (or an overlay pattern) is not a pattern RE2 compiles
                  (backreferences, lookaround): SOP patterns run in linear time
SOP121  warning   a parameter phrase (type, attribute, constraint) is not enforced
SOP124  error     a parameter default breaks its own type/Values/Format/bounds, or a bad overlay
SOP130  error     an example's input uses an undeclared parameter
SOP131  error     an example's input violates the parameter schema
SOP132  warning   an example's input uses a parameter only the overlay schema declares
SOP135  warning   an example asks for a larger amount than the example that produced its
                  symbol (engine.language.example_symbols.example_diagnostics)
SOP140  warning   a step branches on a parameter but an enum value has no branch
SOP141  warning   a ``**For X**:`` branch matches no parameter value
SOP150  warning   a Related SOPs link resolves to no file
SOP151  error     a step reference in prose ("return to step 5.2") names no step
                  (engine.language.step_refs)
SOP160  warning   an Error Recovery phrase is outside the recovery vocabulary
SOP190  error     the file cannot be read (missing, a directory, permissions)
SOP193  error     the file is larger than the parser's MAX_BYTES (not read at all)
SOP199  error     checking this file failed (a bug: please report it)
======  ========  ==============================================================

Empty, binary and non-UTF-8 files, and lines over the parser's MAX_LINE, are the
parser's findings (SOP001-SOP004, SOP016); when
the parser reports such a file-level error, lint adds nothing of its own. Where the
parser already reports the same problem (no Steps SOP010, numbering SOP012/SOP013,
empty step SOP014, unresolved branch SOP023) the SOP1xx twin is not repeated.

Negative constraints: the Agent SOP rule asks every MUST NOT / SHOULD NOT to give
its reason. A reason is a "because"/"since"/"so that"/"to avoid"/"to prevent"/
"otherwise"/"due to" clause or a parenthetical ("MUST NOT retry payment failures
(only network/timeout errors)"). Files in that format (any ``**Constraints:**``
block) get a warning; other files (the seed's ``**Actions**:`` style, which has no
such rule) get an info, which never fails a run, not even with ``--strict``.

Infos, warnings and errors are all printed; exit 1 on errors, or on warnings with
``--strict``.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import unquote

from engine.errors import LintRefused
from engine.language import params
from engine.language.example_symbols import example_diagnostics
from engine.language.parser import KNOWN_SECTIONS, MAX_BYTES, parse
from engine.language.step_refs import step_reference_diagnostics
from engine.model import Diagnostic, Severity, Sop

MAX_NESTING = 16
_FILE_LEVEL = {"SOP001", "SOP002", "SOP003", "SOP004", "SOP015", "SOP016", "SOP099"}
#: my code -> parser codes that already say the same thing
_TWINS = {
    "SOP101": {"SOP010"},
    "SOP103": {"SOP012", "SOP013"},
    "SOP104": {"SOP014"},
    "SOP141": {"SOP023"},
}
_NESTED = re.compile(r"^([ \t]*)((?:(?:[-*+]|\d{1,9}[.)])[ \t]+|>[ \t]?)+)")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
# a line can only be nested > MAX_NESTING deep with wide indentation or many markers
_MAYBE_DEEP = re.compile(r"^(?:[ \t]{5,}|(?:[ \t]*(?:[-*+>]|\d{1,9}[.)])[ \t]*){7,})", re.MULTILINE)
REQUIRED_SECTIONS = ("Overview", "Steps")
_STEP_HEADING = re.compile(r"^ {0,3}###[ \t]+\d{1,9}[.)]", re.MULTILINE)
_REASON = re.compile(
    r"\b(because|since|as (?:this|that|it|these|those)|so that|in order to"
    r"|to (?:avoid|prevent|keep|protect)|otherwise|which would|due to)\b|\(",
    re.IGNORECASE,
)
_RECOVERY_VOCABULARY = (
    "retry, up to N times, max N retries, exponential backoff, do not retry, "
    "escalate to X, notify X, block transaction; see engine/language/recovery.py"
)


def _diag(
    sop: Sop, code: str, severity: Severity, message: str, line: int, col: int = 1
) -> Diagnostic:
    return Diagnostic(code, severity, message, max(line, 1), col, sop.path)


def lint(sop: Sop) -> list[Diagnostic]:
    """The parser's diagnostics plus every check in this module, sorted by line."""
    found: list[Diagnostic] = [
        d if d.path else dataclasses.replace(d, path=sop.path) for d in sop.diagnostics
    ]
    if any(d.code in _FILE_LEVEL for d in found):
        return _sorted(found)  # not an SOP at all: further findings would be noise
    parser_codes = {(d.code, d.line) for d in found}
    parser_any = {d.code for d in found}
    checks = (
        _sections,
        _stray_steps,
        _steps,
        _nesting,
        _negatives,
        _parameters,
        _examples,
        _example_amounts,
        _branches,
        _related,
        _recovery,
        step_reference_diagnostics,
    )
    for check in checks:
        for d in check(sop):
            twins = _TWINS.get(d.code, set())
            if d.code == "SOP101":
                if "'## Steps'" in d.message and twins & parser_any:
                    continue
            elif any((t, d.line) in parser_codes for t in twins):
                continue
            found.append(d)
    return _sorted(_dedupe(found))


def errors(sop: Sop) -> list[str]:
    """Each lint error of ``sop`` as one ``path:line: CODE message`` line.

    The one check that keeps an SOP with lint errors from running (engine.binding.planner.plan,
    so ``sop run/plan/test``, ``engine.run/plan``) or being served (``sop mcp``). A Sop
    is immutable: its errors are worked out once and kept with it (``Sop.derived``).
    """
    return list(sop.derived("lint.errors", lambda: _error_lines(sop)))


def _error_lines(sop: Sop) -> tuple[str, ...]:
    where = sop.path or sop.name
    return tuple(
        f"{where}:{d.line}: {d.code} {d.message}" for d in lint(sop) if d.severity is Severity.ERROR
    )


def refuse_errors(sop: Sop) -> None:
    """Raise :class:`engine.errors.LintRefused` when ``sop`` has lint errors."""
    lines = errors(sop)
    if lines:
        raise LintRefused(sop.name, lines)


def _dedupe(found: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[str, int, str]] = set()
    out = []
    for d in found:
        key = (d.code, d.line, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _sorted(found: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(found, key=lambda d: (d.path or "", d.line, d.col, d.code))


def _section_titles(sop: Sop) -> set[str]:
    return {s.title.strip().lower() for s in sop.sections}


def _sections(sop: Sop) -> Iterator[Diagnostic]:
    titles = _section_titles(sop)
    for wanted in REQUIRED_SECTIONS:
        if wanted.lower() not in titles:
            yield _diag(
                sop,
                "SOP101",
                Severity.ERROR,
                f"missing section '## {wanted}': add it"
                + (
                    " with '### 1. Title' steps"
                    if wanted == "Steps"
                    else " (one paragraph: what and why)"
                ),
                1,
            )
    if "parameters" not in titles and any(e.input for e in sop.examples):
        line = min(e.line for e in sop.examples if e.input)
        yield _diag(
            sop,
            "SOP102",
            Severity.ERROR,
            "examples pass input but there is no '## Parameters' section: declare each input "
            "as '- **name** (type): description'",
            line,
        )


def _stray_steps(sop: Sop) -> Iterator[Diagnostic]:
    """Steps only run from '## Steps': what looks like steps elsewhere would be dropped."""
    for section in sop.sections:
        key = " ".join(section.title.lower().split())
        if key in KNOWN_SECTIONS:
            continue
        heading = _STEP_HEADING.search(section.text)
        # imported here, not at the top: only an SOP with an unknown section gets here,
        # and the `sop lint` cold start (a target, README "Speed") would pay for it
        import difflib

        near = difflib.get_close_matches(key.strip(" :"), ["steps"], n=1, cutoff=0.75)
        if heading is None and not (near and section.actions):
            continue
        what = (
            f"step heading '{heading.group(0).strip()}'"
            if heading is not None
            else "MUST/SHOULD/MAY lines"
        )
        yield _diag(
            sop,
            "SOP106",
            Severity.ERROR,
            f"section '## {section.title}' holds {what} that never run: only the section "
            "'## Steps' is run; rename it '## Steps' or move its steps there",
            section.line,
        )
    if sop.steps and not sop.all_actions():
        yield _diag(
            sop,
            "SOP107",
            Severity.ERROR,
            "no step has an action or a check, so running it would do nothing: add "
            "'**Actions**:' with '- MUST ...' lines under the steps",
            sop.steps[0].line,
        )


def _steps(sop: Sop) -> Iterator[Diagnostic]:
    for index, step in enumerate(sop.steps, start=1):
        if step.number != index:
            yield _diag(
                sop,
                "SOP103",
                Severity.ERROR,
                f"step '{step.number}. {step.title}' is step {index} in order: number steps 1..N "
                f"without gaps or repeats (write '### {index}. {step.title}')",
                step.line,
            )
        if not step.actions and not step.checks and not step.branches:
            yield _diag(
                sop,
                "SOP104",
                Severity.WARNING,
                f"step {step.number} '{step.title}' has no action, constraint or check to bind: "
                "add '- MUST ...' lines under **Actions**: (or **Constraints:**)",
                step.line,
            )


def _nesting(sop: Sop) -> Iterator[Diagnostic]:
    """Absurdly deep lists/quotes: a generated or corrupted file, not a procedure."""
    if MAX_NESTING >= 16 and _MAYBE_DEEP.search(sop.text) is None:
        return
    in_fence = False
    for number, line in enumerate(sop.text.splitlines(), start=1):
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        m = _NESTED.match(line)
        if m is None:
            continue
        depth = len(m.group(1).expandtabs(4)) // 2 + len(re.findall(r"[-*+>]|\d+[.)]", m.group(2)))
        if depth > MAX_NESTING:
            yield _diag(
                sop,
                "SOP105",
                Severity.ERROR,
                f"list nested {depth} levels deep (limit {MAX_NESTING}): flatten it; an SOP "
                "action is one list item, its details one level below",
                number,
            )
            return


def _agent_sop_format(sop: Sop) -> bool:
    return any(a.block == "constraints" for a in sop.all_actions())


def _negatives(sop: Sop) -> Iterator[Diagnostic]:
    severity = Severity.WARNING if _agent_sop_format(sop) else Severity.INFO
    for action in sop.all_actions():
        if action.level.negative and not _REASON.search(action.text):
            keyword = action.keyword or action.level.value
            yield _diag(
                sop,
                "SOP110",
                severity,
                f"'{keyword} {action.text}' gives no reason: append 'because ...' so readers and "
                "agents know what the prohibition protects",
                action.line,
            )


def _parameters(sop: Sop) -> Iterator[Diagnostic]:
    for d in params.unenforced(sop):
        yield d if d.path else dataclasses.replace(d, path=sop.path)


def _examples(sop: Sop) -> Iterator[Diagnostic]:
    examples = [e for e in sop.examples if isinstance(e.input, dict) and e.input]
    if not examples:
        return
    declared = set(params.declared(sop))
    for example in examples:
        default_line = example.input_line or example.line
        for key in example.input:
            line = example.key_lines.get(str(key), default_line)
            if key not in declared:
                yield _diag(
                    sop,
                    "SOP130",
                    Severity.ERROR,
                    f"example '{example.title}' passes undeclared parameter '{key}': declare "
                    f"it under ## Parameters or in schemas/{sop.name}.params.schema.json, "
                    "or remove it",
                    line,
                )
            elif sop.parameter(str(key)) is None:
                yield _diag(
                    sop,
                    "SOP132",
                    Severity.WARNING,
                    f"example '{example.title}' passes parameter '{key}', which the Parameters "
                    f"section does not declare (only schemas/{sop.name}.params.schema.json "
                    "does): declare it under ## Parameters so readers of the SOP see it",
                    line,
                )
        known = {k: v for k, v in example.input.items() if k in declared}
        for problem in params.problems(sop, known):
            name = problem.partition(":")[0].partition("[")[0]
            yield _diag(
                sop,
                "SOP131",
                Severity.ERROR,
                f"example '{example.title}' input is invalid: {problem}; fix the example or the "
                "parameter's declaration",
                example.key_lines.get(name, default_line),
            )


def _example_amounts(sop: Sop) -> Iterator[Diagnostic]:
    for d in example_diagnostics(sop):
        yield d if d.path else dataclasses.replace(d, path=sop.path)


def _branches(sop: Sop) -> Iterator[Diagnostic]:
    properties = params.declared(sop) if sop.parameters else {}
    for step in sop.steps:
        selected: dict[str, set[str]] = {}
        for branch in step.branches:
            if branch.param is None:
                yield _diag(
                    sop,
                    "SOP141",
                    Severity.WARNING,
                    f"branch 'For {branch.label}' in step {step.number} matches no parameter "
                    "value, so it can never be selected: name a value from a parameter's Values "
                    "(e.g. 'For Charges' for operation = charge)",
                    branch.line,
                )
                continue
            selected.setdefault(branch.param, set()).add(str(branch.value))
        for param, values in selected.items():
            enum = properties.get(param, {}).get("enum") or []
            missing = [v for v in enum if str(v) not in values]
            for value in missing:
                label = str(value).replace("_", " ").title()
                yield _diag(
                    sop,
                    "SOP140",
                    Severity.WARNING,
                    f"step {step.number} branches on {param} but no branch handles "
                    f"{param} = {value!r}: add a '**For {label}s**:' block, or say in the step "
                    "why it does not apply",
                    step.line,
                )


def _related(sop: Sop) -> Iterator[Diagnostic]:
    if not sop.path:
        return
    base = Path(sop.path).parent
    for link in sop.related:
        target = link.target.strip()
        if (
            not target
            or re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE)
            or target.startswith("#")
        ):
            continue
        target = unquote(target.split("#", 1)[0].split("?", 1)[0])
        if target and not (base / target).exists():
            yield _diag(
                sop,
                "SOP150",
                Severity.WARNING,
                f"related SOP '{link.title}' links to '{link.target}', which does not exist "
                f"relative to {base}: create it or fix the link",
                link.line,
            )


def _recovery(sop: Sop) -> Iterator[Diagnostic]:
    for rule in sop.recovery:
        for phrase in rule.unknown_phrases:
            yield _diag(
                sop,
                "SOP160",
                Severity.WARNING,
                f"recovery for '{rule.error_type}': '{phrase}' is not in the recovery vocabulary "
                f"({_RECOVERY_VOCABULARY}) and will not be enforced: rephrase it, or implement it "
                "in the handler that raises this condition",
                rule.line,
            )


# --------------------------------------------------------------------------- files


def _file_diag(path: str, code: str, message: str, line: int = 1, col: int = 1) -> Diagnostic:
    return Diagnostic(code, Severity.ERROR, message, line, col, path)


def lint_file(path: str | Path) -> list[Diagnostic]:
    """Read and parse one file; never raises on its content or its absence."""
    name = str(path)
    try:
        size = os.stat(name).st_size
        if size > MAX_BYTES:
            return [
                _file_diag(
                    name,
                    "SOP193",
                    f"file is {size:,} bytes, over the {MAX_BYTES:,}-byte limit for one SOP: split "
                    "the procedure and link the parts under Related SOPs",
                )
            ]
        with open(name, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        return [_file_diag(name, "SOP190", f"cannot read file: {exc.strerror or exc}")]
    try:
        return lint(parse(data, path=name))
    except RecursionError:
        return [
            _file_diag(name, "SOP199", "document is nested too deeply to check: flatten its lists")
        ]
    except Exception as exc:  # a parser/lint bug must not stop linting the other files
        return [
            _file_diag(
                name,
                "SOP199",
                f"internal error while checking this file: {type(exc).__name__}: {exc}",
            )
        ]


def sop_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Files named directly, plus ``*.sop.md`` under directories (recursive, skips dot-dirs)."""
    files: list[Path] = []
    missing: list[Diagnostic] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
                files.extend(Path(root) / n for n in sorted(names) if n.endswith(".sop.md"))
        elif path.exists():
            files.append(path)
        else:
            missing.append(
                _file_diag(str(path), "SOP190", "no such file or directory: check the path")
            )
    return files, missing


PARALLEL_MIN_FILES = 200


def lint_paths(paths: Iterable[str | Path], *, jobs: int | None = None) -> list[Diagnostic]:
    """Lint files and directories (recursive ``*.sop.md``); unreadable files become diagnostics.

    ``jobs``: worker processes; None = one per CPU for large trees (at least
    PARALLEL_MIN_FILES files, forked only from a single-threaded process), 1 = serial.
    Output order is the same either way: files in order, each file's findings by line.
    """
    files, found = sop_files(paths)
    workers = _workers(len(files), jobs)
    if workers > 1:
        found.extend(_lint_parallel([str(f) for f in files], workers))
        return found
    for file in files:
        found.extend(lint_file(file))
    return found


def _lint_chunk(names: list[str]) -> list[Diagnostic]:
    """One worker task: a run of files in, only their diagnostics back (small pickles)."""
    out: list[Diagnostic] = []
    for name in names:
        out.extend(lint_file(name))
    return out


def _worker_start() -> None:
    """Forked worker: the parent's heap (modules, a caller's data) is never garbage here.

    ``gc.freeze`` moves every inherited object out of the collector's reach, so a
    collection scans only what this worker allocates; parsing allocates many small
    containers that die young, so the first generation may grow larger between runs.
    """
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _lint_parallel(names: list[str], workers: int) -> list[Diagnostic]:
    # lazy: process pools are only for large trees, and these imports cost every CLI start
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    params.warm_up()  # the workers' imports, done once here and shared by every forked worker

    # small chunks: a worker slowed by other load on the box does not hold the tail
    size = min(64, max(4, len(names) // (workers * 16)))
    chunks = [names[i : i + size] for i in range(0, len(names), size)]
    context = multiprocessing.get_context("fork")
    try:
        with ProcessPoolExecutor(
            max_workers=workers, mp_context=context, initializer=_worker_start
        ) as pool:
            results = list(pool.map(_lint_chunk, chunks))
    except (BrokenProcessPool, OSError):
        results = [_lint_chunk(chunk) for chunk in chunks]  # a worker died: do it here
    return [d for result in results for d in result]


def _workers(count: int, jobs: int | None) -> int:
    if jobs is not None:
        wanted = max(1, jobs)
    elif count < PARALLEL_MIN_FILES:
        return 1
    else:
        wanted = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    if wanted > 1 and (os.name != "posix" or threading.active_count() > 1):
        return 1  # fork is only safe without other threads
    return min(wanted, max(1, count))
