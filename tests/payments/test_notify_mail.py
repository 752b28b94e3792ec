"""The outbox mail is a well-formed RFC 5322 message whatever the names and text hold.

The notifier builds its messages under ``email.policy.compat32`` (see
``handlers.payments.notify.message``); these read them back with the modern parser.
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from handlers.payments.notify import Notifier

CONTEXT = {"operation": "charge", "amount": 2500, "currency": "eur", "transaction_id": "pi_1"}
CONTEXT |= {"customer_name": "Ada", "card_last4": "4242", "description": ""}


def _read(path: Path) -> EmailMessage:
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_non_ascii_names_and_text_read_back_exactly(tmp_path: Path) -> None:
    notifier = Notifier(outbox=tmp_path, sender="Zahlungen Müller <pay@example.invalid>")
    context = {**CONTEXT, "customer_name": "Ädä Løvelace"}
    context["description"] = "Grüße " + "x" * 300  # a line longer than 78: quoted-printable
    path = notifier.send("receipt", "Ädä <ada@example.invalid>", context, run_id="r1", key="k1")
    mail = _read(path)
    assert mail["To"].addresses[0].display_name == "Ädä"
    assert mail["To"].addresses[0].addr_spec == "ada@example.invalid"
    assert mail["From"].addresses[0].display_name == "Zahlungen Müller"
    assert mail["Subject"] == "Your receipt for 25.00 EUR"
    assert mail["Message-ID"] == "<k1@example.invalid>"
    body = mail.get_content()
    assert "Hello Ädä Løvelace," in body and "Grüße " + "x" * 300 in body
    assert all(len(line) <= 78 for line in path.read_bytes().splitlines())


def test_a_line_break_in_an_address_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    notifier = Notifier(outbox=tmp_path / "out")
    with pytest.raises(ValueError, match="mail header To: a line break"):
        notifier.send("receipt", "a@b.invalid\nBcc: c@d.invalid", CONTEXT, run_id="r", key="k")
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


HEADER_VALUES = [
    "",
    "a",
    "Your receipt for 25.00 EUR",
    "payments@sop-engine.invalid",
    "<run_0123456789abcdef-receipt-0123456789abcdef0123456789abcdef@sop-engine.invalid>",
    "two  spaces",
    " leading",
    "trailing ",
    " ",
    "x" * 68 + " ",
    "y  " * 23,
    "tab\there",
    "bell\x07",
    "=?utf-8?q?looks_encoded?=",
    "Zahlungen Müller <pay@example.invalid>",
    "x" * 69,  # "Subject: " + 69 = 78, the longest line left as it is
    "x" * 70,  # one more: compat32's own business
    " ".join(["word"] * 40),  # folded at spaces
]


@pytest.mark.parametrize("value", HEADER_VALUES)
def test_the_outbox_policy_writes_what_compat32_writes(value: str) -> None:
    """The notifier's policy skips compat32's refolding only where it changes nothing."""
    from handlers.payments.notify import POLICY, message

    mail = message({"Subject": value, "To": "ada@example.invalid"}, "Hello.\n")
    assert mail.policy is POLICY
    assert mail.as_bytes() == mail.as_bytes(policy=policy.compat32)
    assert mail.as_string() == mail.as_string(policy=policy.compat32)
