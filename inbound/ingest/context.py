"""The typed context the ingest steps read and fill in (no untyped dicts in the pipeline)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from inbound.email.autoreply import AutoVerdict
from inbound.email.authenticity import DmarcResult, SenderAuth
from inbound.email.bounces import BounceReport
from inbound.email.model import ParsedEmail
from inbound.ingest.threading import ThreadDecision


class Disposition(StrEnum):
    """What the pipeline does with the message in the end."""

    WRITE = "write"  # new ticket or reply
    DUPLICATE = "duplicate"  # same mail again: nothing new
    IGNORE = "ignore"  # loop / auto-reply to nothing / unmatched bounce: stored raw only
    BOUNCE = "bounce"  # delivery failure of one of our mails: mark it, attach to its ticket
    QUARANTINE = "quarantine"  # rate cap hit: kept for an operator, not written
    AGENT = "agent"  # an agent's verified mail: an action on a ticket (inbound/ingest/agent_mail.py)


@dataclass(frozen=True)
class AgentMatch:
    """Whose agent token a verified agent mail used, and for which ticket."""

    agent_id: uuid.UUID
    ticket_id: uuid.UUID
    note_address: bool  # sent to support+note-<token>@: everything in it is an internal note


@dataclass
class IngestContext:
    raw_id: uuid.UUID
    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    inbox_address: str
    envelope_recipients: tuple[str, ...]
    envelope_sender: str | None
    payload: bytes
    client_ip: str | None = None  # the SMTP peer; None for IMAP and files
    helo: str | None = None
    parsed: ParsedEmail | None = None
    sender: str | None = None
    digest: str | None = None
    flags: list[str] = field(default_factory=list)
    automatic: AutoVerdict | None = None
    bounce_candidate: BounceReport | None = None  # what the detector saw; acted on only with evidence
    bounce: BounceReport | None = None
    thread: ThreadDecision | None = None
    disposition: Disposition = Disposition.WRITE
    outcome: str = ""  # human-readable, stored on the raw record
    linked_ticket_id: uuid.UUID | None = None
    # Set when only the headers were taken (IMAP mail over the size limit): what agents are told.
    stub_note: str | None = None
    sender_auth: SenderAuth | None = None
    released: bool = False  # an agent released this held mail: hold rules are overridden
    agent: AgentMatch | None = None  # set with Disposition.AGENT


def dmarc_failed(ctx: IngestContext) -> bool:
    return ctx.sender_auth is not None and ctx.sender_auth.dmarc is DmarcResult.FAIL


def semantic_digest(parsed: ParsedEmail) -> str:
    """'Same content' for dedupe: what the sender wrote, not trace headers added in transit
    (a message delivered twice through different relays has different Received: lines)."""
    h = hashlib.sha256()
    for part in (
        parsed.subject,
        parsed.from_.addr if parsed.from_ else "",
        parsed.date.isoformat() if parsed.date else "",
        parsed.text,
        parsed.html or "",
        *(a.sha256 for a in parsed.attachments),
    ):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()
