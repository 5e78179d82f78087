"""Small builders of raw test messages."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from inbound.email.model import ParsedEmail
from inbound.email.parse import parse_email


def make_raw(headers: dict[str, str] | None = None, body: str = "Hello, my printer is broken.\n") -> bytes:
    """Raw bytes of a plain-text message with sensible defaults and extra headers."""
    message = EmailMessage()
    defaults = {
        "From": "Customer <customer@example.com>",
        "To": "support@threadline.test",
        "Subject": "Printer broken",
        "Message-ID": "<m1@example.com>",
        "Date": "Mon, 02 Jun 2025 10:00:00 +0200",
    }
    for name, value in {**defaults, **(headers or {})}.items():
        message[name] = value
    message.set_content(body)
    return message.as_bytes(policy=SMTP)


def make_parsed(headers: dict[str, str] | None = None, body: str = "Hello, my printer is broken.\n") -> ParsedEmail:
    return parse_email(make_raw(headers, body))
