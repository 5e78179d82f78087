"""Frozen value objects for one parsed inbound email.

Nothing outside ``inbound/email/`` touches MIME: the rest of Threadline sees only these.
Conventions, fixed here so every consumer can rely on them:

* Message-IDs (``message_id``, ``in_reply_to``, ``references``) are stored **without**
  angle brackets and without whitespace, case preserved: ``<a.b@c>`` -> ``"a.b@c"``.
  RFC 5322 §3.6.4 puts the brackets around the id, they are not part of it; comparing
  bare ids lets a sloppy client that omits them still thread.
* Header values are decoded (RFC 2047) and single-line: no CR, LF or other line break
  ever survives into a value (header injection, RFC 5322 §2.2).
* ``date`` is timezone-aware and in UTC.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class EmailAddress:
    """One mailbox. ``addr`` is stripped, its domain lower-cased.

    The local part keeps its case: RFC 5321 §2.4 lets a server treat it as
    case-sensitive, so folding it could name a different mailbox.
    """

    name: str
    addr: str

    @classmethod
    def normalised(cls, name: str, addr: str) -> EmailAddress:
        """Build an address with the normalisation above applied."""
        addr = "".join(addr.split()).strip("<>")
        local, at, domain = addr.rpartition("@")
        if at:
            addr = f"{local}@{domain.lower()}"
        return cls(name=" ".join(name.split()), addr=addr)

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    """A decoded MIME leaf that is not body text (or a named inline text part)."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    content_id: str | None
    inline: bool

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        """Hex digest; attachments are stored content-addressed by it."""
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class ParsedEmail:
    """Everything the ingest pipeline needs from one message, decoded once."""

    message_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    from_: EmailAddress | None
    to: tuple[EmailAddress, ...]
    cc: tuple[EmailAddress, ...]
    reply_to: tuple[EmailAddress, ...]
    # First Return-Path header, brackets removed. "" is the null reverse-path "<>"
    # (RFC 5321 §4.5.5: bounces and auto-replies), None means the header is absent.
    return_path: str | None
    date: datetime | None
    # Every header in order as (lower-cased name, decoded single-line value).
    headers: tuple[tuple[str, str], ...]
    text: str
    html: str | None
    reply_text: str
    attachments: tuple[ParsedAttachment, ...]
    defects: tuple[str, ...]
    is_multipart_report: bool
    # RFC 6522 report-type parameter ("delivery-status", "disposition-notification").
    report_type: str | None
    content_digest: str

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)

    def header_values(self, name: str) -> tuple[str, ...]:
        """All values of header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return tuple(value for key, value in self.headers if key == wanted)
