"""``Sandbox``: start, drive and stop the local Stripe sandbox from Python.

The servers run in a child process (``python -m handlers.sandbox.server``), so a
test's own event loops, threads and GIL never slow localstripe down, and
``stop()`` (or the death of the parent, through the closed stdin pipe) ends it
with nothing left listening.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from engine.errors import SopError

if TYPE_CHECKING:
    import stripe

DEFAULT_API_KEY = "sk_test_sandbox_0000000000000000"


class SandboxError(SopError):
    """The sandbox could not start, or its control API refused a request."""


class Sandbox:
    """A localstripe + idempotency/fault layer on 127.0.0.1, as a context manager."""

    def __init__(
        self, port: int = 0, *, api_key: str = DEFAULT_API_KEY, startup_timeout: float = 20.0
    ) -> None:
        self.port = port
        self.api_key = api_key
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._url: str | None = None
        self._upstream_url: str | None = None

    # lifecycle -----------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._proc is not None:
            return self
        # an unnamed file: nothing to clean up, even if this process is killed
        self._log = tempfile.TemporaryFile(prefix="sop-sandbox-")  # noqa: SIM115 - lives until stop()
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "handlers.sandbox.server"]
        cmd += ["--port", str(self.port), "--watch-stdin"]
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env
        )
        try:
            ready = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        self._url = str(ready["url"])
        self._upstream_url = str(ready["upstream_url"])
        return self

    def _read_ready_line(self) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        deadline = time.monotonic() + self.startup_timeout
        buffer = b""
        while b"\n" not in buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SandboxError(f"sandbox did not start within {self.startup_timeout:g}s")
            readable, _, _ = select.select([proc.stdout], [], [], min(left, 0.2))
            if readable:
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(timeout=5)
                    raise SandboxError(f"sandbox failed to start: {self._last_log_line()}")
                buffer += chunk
        line = json.loads(buffer.split(b"\n", 1)[0])
        if not isinstance(line, dict):
            raise SandboxError(f"sandbox sent an unexpected ready line: {line!r}")
        return line

    def _last_log_line(self) -> str:
        text = ""
        if self._log is not None:
            self._log.seek(0)
            text = self._log.read().decode("utf-8", "replace").strip()
        return text.splitlines()[-1] if text else "no output"

    def stop(self) -> None:
        """Stop both servers and wait for the process; idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()  # the server stops on EOF
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # addresses ----------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str:
        """Base address for the SDK: ``base_addresses={"api": sandbox.url}``."""
        if self._url is None:
            raise SandboxError("sandbox is not started")
        return self._url

    @property
    def upstream_url(self) -> str:
        """localstripe itself, without idempotency or faults (for diagnosis only)."""
        if self._upstream_url is None:
            raise SandboxError("sandbox is not started")
        return self._upstream_url

    def env(self) -> dict[str, str]:
        """What a process needs to talk to this sandbox."""
        return {"STRIPE_API_BASE": self.url, "STRIPE_API_KEY": self.api_key}

    def client(self, *, timeout: float = 10.0, max_network_retries: int = 0) -> stripe.StripeClient:
        """An official SDK client aimed at the sandbox (no SDK-level retries by default)."""
        import stripe

        return stripe.StripeClient(
            self.api_key,
            base_addresses={"api": self.url},
            max_network_retries=max_network_retries,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    # control API ----------------------------------------------------------------

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail)["error"]
            raise SandboxError(f"sandbox {method} {path}: {detail}") from None
        except OSError as exc:
            raise SandboxError(f"sandbox {method} {path}: {exc}") from None

    def inject(
        self,
        fault: str,
        *,
        match: str = "/v1/",
        method: str | None = None,
        times: int = 1,
        seconds: float | None = None,
        decline_code: str | None = None,
    ) -> dict[str, Any]:
        """Arm a fault for the next ``times`` matching requests (path prefix ``match``).

        ``fault``: "429", "500", "503" (Stripe-shaped error, not forwarded), "reset"
        (connection reset, not forwarded), "timeout" (held ``seconds``, then closed,
        not forwarded), "drop_after" (localstripe acts and the idempotency cache saves
        the answer, the client gets a reset), "delay" (forwarded after ``seconds``,
        holding the key's lock), "decline" (402 card_error with ``decline_code``).
        """
        spec: dict[str, Any] = {"fault": fault, "match": match, "times": times}
        if method is not None:
            spec["method"] = method
        if seconds is not None:
            spec["seconds"] = seconds
        if decline_code is not None:
            spec["decline_code"] = decline_code
        result: dict[str, Any] = self._control("POST", "/_sandbox/faults", spec)["fault"]
        return result

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._control("GET", "/_sandbox/faults")["faults"]
        return result

    def clear_faults(self) -> None:
        self._control("DELETE", "/_sandbox/faults")

    def requests(self) -> list[dict[str, Any]]:
        """Requests that reached the layer: method, path, idempotency_key, status, ..."""
        result: list[dict[str, Any]] = self._control("GET", "/_sandbox/requests")["requests"]
        return result

    def counts(self) -> dict[str, Any]:
        result: dict[str, Any] = self._control("GET", "/_sandbox/requests")["counts"]
        return result

    def advance_clock(self, seconds: float) -> None:
        """Move the idempotency clock forward (keys expire after 24h)."""
        self._control("POST", "/_sandbox/clock", {"advance": seconds})

    def reset(self) -> None:
        """Flush localstripe's data, the idempotency cache, faults and counters."""
        self._control("POST", "/_sandbox/reset", {})
