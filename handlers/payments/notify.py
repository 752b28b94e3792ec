"""Notifications and receipts: jinja2 templates rendered into an outbox (or sent by SMTP).

Every message is written to the outbox directory (``SOP_OUTBOX``, default
``.sop/outbox``) as an RFC 5322 ``.eml`` file, so a run's notifications can be read
and tested without a mail server; when ``SOP_SMTP_HOST`` is set the same message is
also sent through SMTP. Every value is redacted before rendering, so a card number
or CVV that slipped into a description never reaches a message.

Once per key: every message has a key (the handler's ``ctx.idempotency_key(...)``) that
names its outbox file and its ``Message-ID``. A message whose file exists was made
before (a handler re-run after a crash): it is neither written nor sent again. The file
is written after the SMTP send, so a crash between the two sends the message again on
resume (SMTP stays at-least-once in that window, with the same ``Message-ID`` for the
receiver to drop the duplicate).
"""

from __future__ import annotations

import os
import re
import smtplib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.contentmanager import raw_data_manager
from email.message import EmailMessage
from email.policy import Compat32
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.binding.registry import default_registry
from engine.execution.redact import redact

if TYPE_CHECKING:
    import jinja2

    from engine import RunContext

SERVICE = "notifier"
TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_OUTBOX = Path(".sop") / "outbox"
DEFAULT_SENDER = "payments@sop-engine.invalid"
DEFAULT_SUPERVISOR = "supervisor@sop-engine.invalid"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]+")

#: Currencies whose minor unit is the major unit (no cents), per Stripe's list.
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)


def format_amount(amount: int | None, currency: str | None) -> str:
    """Minor units as a person reads them: 2500 usd -> "25.00 USD"."""
    if amount is None:
        return "-"
    cur = (currency or "").lower()
    if cur in ZERO_DECIMAL:
        return f"{amount} {cur.upper()}"
    return f"{amount // 100}.{amount % 100:02d} {cur.upper()}".strip()


def _environment() -> jinja2.Environment:
    import jinja2  # lazy: loading the pack for a plan or coverage never needs templates

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # plain-text mail; values are redacted, never executed
        keep_trailing_newline=True,
    )


class _Compat32(Compat32):
    """``email.policy.compat32``, except that a header needing neither folding nor
    encoding is written as it stands, without compat32's ``Header`` round trip.

    That round trip (parse into chunks, refold, re-join) was three quarters of turning
    a receipt into bytes, for the 8 short ASCII headers of every message, and gives back
    the same line for such a header: printable ASCII that fits in ``max_line_length``.
    Everything else (non-ASCII, control characters, a long line) goes through compat32.
    """

    def _as_is(self, name: str, value: Any) -> str | None:
        if (
            isinstance(value, str)
            and value.isascii()
            and value.isprintable()
            and len(name) + 2 + len(value) <= (self.max_line_length or 0)
        ):
            return f"{name}: {value}{self.linesep}"
        return None

    def fold(self, name: str, value: Any) -> str:
        line = self._as_is(name, value)
        return super().fold(name, value) if line is None else line

    def fold_binary(self, name: str, value: Any) -> bytes:
        line = self._as_is(name, value)
        return super().fold_binary(name, value) if line is None else line.encode("ascii")


#: The policy of every message (its outbox bytes and its SMTP send).
POLICY = _Compat32()


def message(headers: Mapping[str, str], body: str) -> EmailMessage:
    """A text/plain message, built under ``email.policy.compat32`` (``POLICY``).

    The same bytes as the default policy for this mail (UTF-8 body as 7bit, 8bit or
    quoted-printable, RFC 2047 for non-ASCII headers), at a sixth of the cost: the
    default policy parses every header it stores and refolds it on output (~5 ms a
    message, most of a receipt's cost). What compat32 does not check is checked
    here: no header may carry a line break (header injection), and addresses are
    encoded by ``_address``.
    """
    msg = EmailMessage(policy=POLICY)
    for name, value in headers.items():
        if "\r" in value or "\n" in value:
            raise ValueError(f"mail header {name}: a line break in {value!r}")
        msg[name] = value
    msg.set_content(body, content_manager=raw_data_manager)
    return msg


def _address(text: str) -> str:
    """``Name <addr>`` with a non-ASCII name RFC 2047-encoded and the address left
    readable (compat32 would encode the whole value as one word); ASCII as it is."""
    if text.isascii():
        return text
    name, addr = parseaddr(text)
    return formataddr((name, addr), charset="utf-8") if addr.isascii() and addr else text


@dataclass
class Notifier:
    """Renders templates and delivers them to the outbox (always) and SMTP (if configured)."""

    outbox: Path
    smtp_host: str | None = None
    smtp_port: int = 25
    sender: str = DEFAULT_SENDER
    supervisor: str = DEFAULT_SUPERVISOR
    #: This notifier's templates, each compiled on first use and kept (jinja2's cache).
    _templates: jinja2.Environment | None = field(
        default=None, init=False, repr=False, compare=False
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if env is None else env
        return cls(
            outbox=Path(env.get("SOP_OUTBOX") or DEFAULT_OUTBOX),
            smtp_host=env.get("SOP_SMTP_HOST") or None,
            smtp_port=int(env.get("SOP_SMTP_PORT") or 25),
            sender=env.get("SOP_MAIL_FROM") or DEFAULT_SENDER,
            supervisor=env.get("SOP_SUPERVISOR_EMAIL") or DEFAULT_SUPERVISOR,
        )

    def render(self, template: str, context: Mapping[str, Any]) -> tuple[str, str]:
        """(subject, body) of ``template`` rendered with a redacted copy of ``context``."""
        safe = redact(dict(context))
        if "amount_display" not in safe:
            safe["amount_display"] = format_amount(safe.get("amount"), safe.get("currency"))
        if self._templates is None:
            self._templates = _environment()
        text = self._templates.get_template(f"{template}.txt.j2").render(**safe)
        first, _, body = text.partition("\n")
        subject = first.removeprefix("Subject:").strip()
        return subject, body.lstrip("\n")

    def path(self, template: str, *, run_id: str, key: str) -> Path:
        """The outbox file of one message: named by run, template and key, nothing else."""
        return self.outbox / (_SAFE_NAME.sub("-", f"{run_id}-{template}-{key}") + ".eml")

    def send(
        self, template: str, to: str, context: Mapping[str, Any], *, run_id: str, key: str
    ) -> Path:
        """Render and deliver one message once per ``key``; returns its outbox file.

        The file existing means the message was made before: returned as it is, not
        written or sent again.
        """
        path = self.path(template, run_id=run_id, key=key)
        if path.exists():
            return path
        subject, body = self.render(template, context)
        headers = {
            "From": _address(self.sender),
            "To": _address(str(redact(to))),
            "Subject": subject,
            "Message-ID": f"<{_SAFE_NAME.sub('-', key)}@{self._domain()}>",
            "X-Sop-Run": run_id,
        }
        mail = message(headers, body)
        data = bytes(mail)
        self.outbox.mkdir(parents=True, exist_ok=True)
        if self.smtp_host:
            with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=30) as smtp:
                smtp.send_message(mail)
        fd, temp = tempfile.mkstemp(dir=self.outbox, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        return path

    def escalate(self, context: Mapping[str, Any], *, run_id: str, key: str) -> Path:
        """An Error Recovery row said "escalate to supervisor": tell the supervisor."""
        return self.send("escalation", self.supervisor, context, run_id=run_id, key=key)

    def _domain(self) -> str:
        """The sender's domain, for Message-IDs."""
        return self.sender.rpartition("@")[2].strip("> ") or "sop-engine.invalid"


class Notifiers:
    """One notifier per configuration for the life of the process, so the templates
    compile once per process rather than on every email (two compiles of ~7 ms a charge)."""

    def __init__(self) -> None:
        self._made: dict[tuple[object, ...], Notifier] = {}

    def get(self, env: Mapping[str, str] | None = None) -> Notifier:
        """The notifier the environment configures (the same object while it is unchanged)."""
        wanted = Notifier.from_env(env)
        key = (
            wanted.outbox,
            wanted.smtp_host,
            wanted.smtp_port,
            wanted.sender,
            wanted.supervisor,
        )
        return self._made.setdefault(key, wanted)


#: The pack's notifiers (process lifetime, like the registered service below).
NOTIFIERS = Notifiers()


@default_registry.service(SERVICE)
def notifier_service(ctx: RunContext) -> Notifier:
    """The notifier configured from the environment (shared by runs with one configuration)."""
    return NOTIFIERS.get()
