"""What ``sop run`` / ``sop resume`` show on stderr while a run goes: fed by the journal.

The runner already journals every step of a run before the next side effect, so the
journal is the observer: ``ObservedJournal`` hands each event to a display as it is
appended (no second runner, no change to the walk). The run id comes first, with the
commit that starts or claims the run (before any handler runs); then, on a terminal, a live line
(rich) with the step, the action, its elapsed time and attempt; elsewhere one plain
line per action settled. ``--quiet`` shows nothing but the result.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, TextIO

from engine.execution.redact import redact_text
from engine.model import Action, Sop
from engine.storage.journal import Journal


class Display(Protocol):
    """Receives each journal event of the runs this command drives."""

    def event(
        self, run_id: str, type_: str, action_id: str | None, data: Mapping[str, Any]
    ) -> None:
        """One event, as appended (before or with its commit; never after a later one)."""

    def close(self) -> None:
        """The command is done: stop any live display."""


class ObservedJournal(Journal):
    """A ``Journal`` that shows each event it appends to a ``Display``.

    A display that fails (a closed stderr) is switched off; it never stops the run.
    """

    def __init__(self, path: str | Path, display: Display, *, lazy: bool = False) -> None:
        super().__init__(path, lazy=lazy)
        self._display: Display | None = display
        #: events of started runs not committed yet: a run's ``run_started`` (and what was
        #: deferred with it) is shown with the commit that writes it, so a run stopped
        #: before its first commit (a bad setting) shows nothing
        self._held: dict[str, list[tuple[str, str | None, Mapping[str, Any]]]] = {}

    def _show(
        self,
        run_id: str,
        type_: str,
        action_id: str | None,
        data: Mapping[str, Any],
        *,
        committed: bool = True,
    ) -> None:
        display = self._display
        if display is None:
            return
        held = self._held.get(run_id)
        if held is not None:
            held.append((type_, action_id, data))
            if not committed:
                return
            del self._held[run_id]
        try:
            for event in held or [(type_, action_id, data)]:
                display.event(run_id, *event)
        except Exception:  # a display is never worth a run
            self._display = None

    def start_run(
        self,
        run_id: str,
        *,
        sop: str,
        sop_path: str | None,
        version: str | None,
        content_hash: str | None,
        params: Mapping[str, Any],
        handlers: list[str],
        parent_run_id: str | None = None,
    ) -> None:
        super().start_run(
            run_id,
            sop=sop,
            sop_path=sop_path,
            version=version,
            content_hash=content_hash,
            params=params,
            handlers=handlers,
            parent_run_id=parent_run_id,
        )
        data = {"sop": sop, "version": version, "parent_run_id": parent_run_id}
        self._held[run_id] = [("run_started", None, data)]

    def claim(self, run_id: str, type_: str, data: Mapping[str, Any] | None = None) -> None:
        super().claim(run_id, type_, data)
        self._show(run_id, type_, None, dict(data or {}))

    def append_text(
        self,
        run_id: str,
        type_: str,
        action_id: str | None,
        text: str,
        *,
        status: str | None = None,
        defer: bool = False,
    ) -> int:
        seq = super().append_text(run_id, type_, action_id, text, status=status, defer=defer)
        if self._display is not None:
            self._show(run_id, type_, action_id, json.loads(text), committed=not defer)
        return seq

    def add_confirmation(
        self,
        run_id: str,
        action_id: str,
        *,
        token_hash: str,
        operation_hash: str,
        expires_at: float,
        data: Mapping[str, Any],
    ) -> None:
        super().add_confirmation(
            run_id,
            action_id,
            token_hash=token_hash,
            operation_hash=operation_hash,
            expires_at=expires_at,
            data=data,
        )
        message = redact_text(str(data.get("message")))  # the handler's words, as journaled
        self._show(run_id, "action_pending", action_id, {"message": message})


def _seconds(ms: Any) -> str:
    return f"{float(ms) / 1000:.3f}s" if isinstance(ms, int | float) else "-"


class _Lines:
    """Action ids -> their lines, for the runs' SOPs; a child run's lines by id only."""

    def __init__(self, sop: Sop | None) -> None:
        self.actions: dict[str, Action] = {a.id: a for a in sop.all_actions()} if sop else {}
        self.main: str | None = None  # the run this command drives (its children are others)

    def describe(self, run_id: str, action_id: str | None) -> str:
        action = self.actions.get(action_id or "") if run_id == self.main else None
        if action is None:
            where = "" if run_id == self.main else f"child {run_id[:8]} "
            return f"{where}{action_id or '-'}"
        step = f"step {action.step}" if action.step is not None else "guard"
        return f"{step} L{action.line} {action.level.value} {action.text}"

    def opening(self, run_id: str, type_: str, data: Mapping[str, Any]) -> str | None:
        """The run id line (the first of the command), or a child's start."""
        if type_ == "run_started":
            what = f"{data.get('sop')} {data.get('version') or ''}".rstrip()
            if self.main is None:
                self.main = run_id
                return f"run {run_id}: {what} started"
            return f"  child run {run_id}: {what} started"
        if type_ == "run_resumed" and self.main is None:
            self.main = run_id
            return f"run {run_id}: resumed"
        return None


def settled_line(lines: _Lines, run_id: str, action_id: str | None, data: Mapping[str, Any]) -> str:
    """``  passed   step 1 L13 MUST verify ...  0.012s``, attempts and reason when telling."""
    result = data.get("result") if isinstance(data.get("result"), dict) else {}
    assert isinstance(result, dict)
    attempts = result.get("attempts") or 1
    tries = f", {attempts} attempts" if isinstance(attempts, int) and attempts > 1 else ""
    reason = f"  ({result['reason']})" if result.get("reason") else ""
    status = str(result.get("status", "?"))
    head = f"  {status:<8} {lines.describe(run_id, action_id)}"
    return f"{head}  {_seconds(result.get('duration_ms'))}{tries}{reason}"


class PlainProgress:
    """Not a terminal: the run id, then one line per action settled (CI logs, pipes)."""

    def __init__(self, sop: Sop | None, stream: TextIO | None = None) -> None:
        self._lines = _Lines(sop)
        self._stream = stream if stream is not None else sys.stderr
        self._lock = threading.Lock()

    def _print(self, text: str) -> None:
        with self._lock:
            print(text, file=self._stream, flush=True)

    def event(
        self, run_id: str, type_: str, action_id: str | None, data: Mapping[str, Any]
    ) -> None:
        opening = self._lines.opening(run_id, type_, data)
        if opening is not None:
            self._print(opening)
        elif type_ == "action_finished":
            self._print(settled_line(self._lines, run_id, action_id, data))
        elif type_ == "action_pending":
            text = self._lines.describe(run_id, action_id)
            self._print(f"  pending  {text}  ({data.get('message')})")

    def close(self) -> None:
        pass


class LiveProgress:
    """A terminal: settled actions scroll above a live line (step, action, elapsed, attempt)."""

    def __init__(self, sop: Sop | None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._lines = _Lines(sop)
        self._console = Console(stderr=True, highlight=False)
        self._current: tuple[str, int, float] | None = None  # what runs, attempt, since
        self._started = time.monotonic()
        self._settled = 0
        self._live = Live(
            self, console=self._console, refresh_per_second=8, transient=True, redirect_stderr=False
        )  # started once the run id is out: the id is the first line

    def __rich__(self) -> str:
        """The live line, redrawn by rich's refresh thread (so elapsed keeps moving)."""
        now = time.monotonic()
        total = f"{now - self._started:.1f}s"
        if self._current is None:
            return f"[dim]{self._settled} settled, {total}[/dim]"
        text, attempt, since = self._current
        tries = f" attempt {attempt}" if attempt > 1 else ""
        return (
            f"[bold cyan]>[/bold cyan] {text}  [yellow]{now - since:.1f}s[/yellow]{tries}"
            f"  [dim]({self._settled} settled, {total})[/dim]"
        )

    def event(
        self, run_id: str, type_: str, action_id: str | None, data: Mapping[str, Any]
    ) -> None:
        from rich.markup import escape

        opening = self._lines.opening(run_id, type_, data)
        if opening is not None:
            self._console.print(escape(opening))
            if not self._live.is_started:
                self._started = time.monotonic()
                self._live.start()
            return
        if type_ == "action_started":
            attempt = data.get("attempt")
            attempt = attempt if isinstance(attempt, int) else 1
            text = escape(self._lines.describe(run_id, action_id))
            since = self._current[2] if self._current and self._current[0] == text else None
            self._current = (text, attempt, since if since is not None else time.monotonic())
        elif type_ == "action_finished":
            self._settled += 1
            self._current = None
            self._console.print(escape(settled_line(self._lines, run_id, action_id, data)))
        elif type_ == "action_pending":
            self._current = None
            text = self._lines.describe(run_id, action_id)
            self._console.print(escape(f"  pending  {text}  ({data.get('message')})"))
        if self._live.is_started:
            self._live.refresh()

    def close(self) -> None:
        if self._live.is_started:
            self._live.stop()


class QuietProgress:
    """``--quiet``: nothing but the result."""

    def event(
        self, run_id: str, type_: str, action_id: str | None, data: Mapping[str, Any]
    ) -> None:
        pass

    def close(self) -> None:
        pass


def display_for(sop: Sop | None, *, quiet: bool, stream: TextIO | None = None) -> Display:
    """Quiet, live (stderr is a terminal) or plain lines."""
    stream = stream if stream is not None else sys.stderr
    if quiet:
        return QuietProgress()
    if stream.isatty():
        return LiveProgress(sop)
    return PlainProgress(sop, stream)
