"""Run the ingest steps over one stored raw message and act on what they decided.

Everything happens in one tenant-scoped transaction: ticket, message, attachments, timeline
and outbox rows commit together with the raw record's new status. A failure rolls that back and
marks the raw record failed with the error (Mailman's "shunt"): visible, replayable, never lost.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.blobs import BlobStore
from core.budget import BudgetCrashed, BudgetExceeded
from core.db.session import tenant_scope
from core.jobs.outbox import record_events
from core.registry import Registry
from core.settings import Settings
from core.tenancy.models import Inbox
from core.tickets import drafts, held, service
from core.tickets.events import DomainEvent
from core.tickets.models import (
    ActorKind,
    Attachment,
    Channel,
    DeliveryState,
    Direction,
    Message,
    RawInbound,
    RawInboundStatus,
    Ticket,
)
from core.tickets.schemas import Actor, NewMessage
from inbound.email.errors import UnparseableEmail
from inbound.ingest.context import Disposition, IngestContext
from inbound.ingest.steps import STEPS, dedupe_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessResult:
    raw_id: uuid.UUID
    status: RawInboundStatus
    outcome: str
    ticket_id: uuid.UUID | None = None
    ticket_number: int | None = None
    message_id: uuid.UUID | None = None
    thread_rule: str | None = None


@dataclass(frozen=True)
class IngestDeps:
    settings: Settings
    factory: sessionmaker[Session]
    registry: Registry
    blobs: BlobStore


def process_raw(deps: IngestDeps, *, tenant_id: uuid.UUID, raw_id: uuid.UUID) -> ProcessResult:
    """Process (or re-process) one raw record; safe to call twice."""
    try:
        with tenant_scope(deps.factory, tenant_id) as session:
            raw = session.execute(
                select(RawInbound).where(RawInbound.id == raw_id).with_for_update()
            ).scalar_one_or_none()
            if raw is None:
                raise LookupError(f"no raw inbound record {raw_id}")
            if raw.status in (RawInboundStatus.PROCESSED, RawInboundStatus.IGNORED):
                return ProcessResult(raw.id, raw.status, raw.outcome or "", raw.ticket_id, None, raw.message_id)
            result = _run(deps, session, raw)
        # After the commit: what happened to this mail, in one line (opened/added to ticket #n (rule), ignored, held).
        log.info("mail %s: %s", result.status.value, result.outcome, extra={"raw_id": str(raw_id)})
        return result
    except UnparseableEmail as exc:
        return _mark_failed(deps, tenant_id, raw_id, f"unparseable: {exc}")
    except (BudgetExceeded, BudgetCrashed) as exc:
        # Deterministic for these bytes: retrying would only hold another worker as long.
        return _mark_failed(deps, tenant_id, raw_id, str(exc))
    except IntegrityError as exc:
        # A concurrent copy of the same mail won the dedupe race: the next attempt sees it.
        _mark_failed(deps, tenant_id, raw_id, f"retrying after a concurrent write: {exc.orig}")
        raise
    except Exception as exc:
        _mark_failed(deps, tenant_id, raw_id, f"{type(exc).__name__}: {exc}")
        raise


def _mark_failed(deps: IngestDeps, tenant_id: uuid.UUID, raw_id: uuid.UUID, error: str) -> ProcessResult:
    with tenant_scope(deps.factory, tenant_id) as session:
        raw = session.get(RawInbound, raw_id)
        if raw is not None:
            raw.status = RawInboundStatus.FAILED
            raw.error = error[:4000]
            raw.attempts += 1
    log.warning("ingest failed; raw record kept for replay", extra={"raw_id": str(raw_id), "error": error[:500]})
    return ProcessResult(raw_id, RawInboundStatus.FAILED, error)


def _size(n: int) -> str:
    return f"{n / 1048576:.1f} MiB" if n >= 1048576 else f"{max(1, round(n / 1024))} KiB"


def _context(session: Session, raw: RawInbound) -> IngestContext:
    inbox = session.get(Inbox, raw.inbox_id) if raw.inbox_id else None
    if inbox is None:
        raise LookupError("the raw record has no inbox")
    envelope = raw.envelope or {}
    stub_note = None
    if envelope.get("too_large"):
        stub_note = (
            f"This mail is {_size(int(envelope.get('size', 0)))}, over the "
            f"{_size(int(envelope.get('limit', 0)))} limit (THREADLINE_MAX_MESSAGE_BYTES): only its "
            f"headers were taken. The original is still in the mailbox folder {envelope.get('folder')!r} "
            f"(UID {envelope.get('uid')})."
        )
    return IngestContext(
        stub_note=stub_note,
        raw_id=raw.id,
        tenant_id=raw.tenant_id,
        inbox_id=inbox.id,
        inbox_address=inbox.address,
        envelope_recipients=tuple(envelope.get("rcpt_tos", ())),
        envelope_sender=envelope.get("mail_from") or None,
        client_ip=envelope.get("peer") or None,
        helo=envelope.get("helo") or None,
        payload=raw.payload,
    )


# What an agent's Release overrides: a released mail is written as a normal mail.
_HOLDS = frozenset({Disposition.IGNORE, Disposition.QUARANTINE, Disposition.BOUNCE})


def _run(deps: IngestDeps, session: Session, raw: RawInbound) -> ProcessResult:
    if raw.source == "widget":
        # Web chat: the same named steps without MIME (a late import: widget_steps builds on this module).
        from inbound.ingest.widget_steps import run_widget

        return run_widget(deps, session, raw)
    ctx = _context(session, raw)
    ctx.released = raw.released_at is not None
    if ctx.stub_note:
        ctx.flags.append("too-large")
    raw.attempts += 1
    for name, step in STEPS:
        step(ctx, session, deps.settings)
        if ctx.released and ctx.disposition in _HOLDS:
            ctx.flags.append("released")
            ctx.disposition, ctx.bounce = Disposition.WRITE, None
            continue
        if ctx.disposition is not Disposition.WRITE:
            log.debug("ingest stopped", extra={"raw_id": str(raw.id), "step": name, "outcome": ctx.outcome})
            break
    _summarise(raw, ctx)
    if ctx.disposition is Disposition.AGENT:
        # An agent's verified mail acts on the ticket as the agent, never as a customer message.
        from inbound.ingest.agent_mail import act

        done = act(deps.settings, deps.registry, session, ctx)
        return _finish(raw, RawInboundStatus.PROCESSED, done.outcome, ticket=done.ticket, message=done.message,
                       rule="agent-mail")
    if ctx.disposition is Disposition.WRITE:
        return _write(deps, session, raw, ctx)
    if ctx.disposition is Disposition.BOUNCE:
        return _bounce(deps, session, raw, ctx)
    if ctx.disposition is Disposition.DUPLICATE:
        return _finish(raw, RawInboundStatus.IGNORED, ctx.outcome)
    status = RawInboundStatus.QUARANTINED if ctx.disposition is Disposition.QUARANTINE else RawInboundStatus.IGNORED
    return _hold(deps, session, raw, status, ctx.outcome)


def _summarise(raw: RawInbound, ctx: IngestContext) -> None:
    parsed = ctx.parsed
    if parsed is not None:
        raw.summary = {"from": str(parsed.from_) if parsed.from_ else ctx.sender, "subject": parsed.subject[:300]}


def _hold(deps: IngestDeps, session: Session, raw: RawInbound, status: RawInboundStatus, outcome: str) -> ProcessResult:
    """Ignored or quarantined on evidence: kept, listed as held mail and shown to agents."""
    result = _finish(raw, status, outcome)
    raw.held = True
    record_events(session=session, registry=deps.registry, events=[held.held_event(raw)])
    return result


def _finish(
    raw: RawInbound, status: RawInboundStatus, outcome: str, *, ticket: Ticket | None = None,
    message: Message | None = None, rule: str | None = None,
) -> ProcessResult:
    raw.status = status
    raw.outcome = outcome
    raw.error = None
    raw.processed_at = datetime.now(timezone.utc)
    raw.ticket_id = ticket.id if ticket else None
    raw.message_id = message.id if message else None
    return ProcessResult(
        raw.id, status, outcome, ticket.id if ticket else None, ticket.number if ticket else None,
        message.id if message else None, rule,
    )


def _new_message(ctx: IngestContext, contact_id: uuid.UUID | None, direction: Direction) -> NewMessage:
    parsed = ctx.parsed
    assert parsed is not None and ctx.thread is not None
    return NewMessage(
        direction=direction,
        source=Channel.EMAIL,
        body_text=ctx.stub_note or parsed.text,
        body_html=None if ctx.stub_note else parsed.html,  # already sanitised by the parser
        reply_text=ctx.stub_note or parsed.reply_text,
        author_contact_id=contact_id,
        author_name=(parsed.from_.name or parsed.from_.addr) if parsed.from_ else ctx.sender,
        email_message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to[0] if parsed.in_reply_to else None,
        references=parsed.references,
        thread_rule=ctx.thread.rule.value,
        thread_reason=ctx.thread.reason,
        dedupe_key=dedupe_key(ctx),
        raw_inbound_id=ctx.raw_id,
        flags=tuple(ctx.flags),
        sender_auth=ctx.sender_auth.as_dict() if ctx.sender_auth else None,
    )


def _write(deps: IngestDeps, session: Session, raw: RawInbound, ctx: IngestContext) -> ProcessResult:
    parsed, decision = ctx.parsed, ctx.thread
    assert parsed is not None and decision is not None
    contact = (
        service.find_or_create_contact(
            session=session, tenant_id=ctx.tenant_id, email=ctx.sender, name=parsed.from_.name if parsed.from_ else None
        )
        if ctx.sender
        else None
    )
    actor = Actor(ActorKind.CONTACT, str(contact.id) if contact else None, ctx.sender or "unknown sender")
    events: list[DomainEvent] = []
    message_in = _new_message(ctx, contact.id if contact else None, Direction.INBOUND)
    if decision.ticket is None:
        opened = service.open_ticket(
            session=session, tenant_id=ctx.tenant_id, inbox_id=ctx.inbox_id, subject=parsed.subject,
            channel=Channel.EMAIL, contact_id=contact.id if contact else None, actor=actor,
            first_message=message_in, linked_ticket_id=ctx.linked_ticket_id,
        )
        ticket, events = opened.value, opened.events
        message = opened.first_message
    else:
        ticket = service.get_ticket(session=session, ticket_id=decision.ticket.id, for_update=True)
        # An auto-reply or list mail on a ticket is kept, but must not reopen it.
        wake = ctx.automatic is None
        appended = service.append_message(session=session, ticket=ticket, message=message_in, actor=actor, reopen=wake)
        events, message = appended.events, appended.value
        if wake:
            # Stale at once, in the same transaction: a draft written for the older question must
            # not be sendable while the knowledge job is still working on the new one.
            events += drafts.supersede_pending(session=session, ticket=ticket)
    assert message is not None
    session.flush()
    _store_attachments(deps, session, ctx, message)
    record_events(session=session, registry=deps.registry, events=events)
    verb = "opened" if decision.ticket is None else "added to"
    return _finish(raw, RawInboundStatus.PROCESSED, f"{verb} ticket #{ticket.number} ({decision.rule.value})",
                   ticket=ticket, message=message, rule=decision.rule.value)


def _store_attachments(deps: IngestDeps, session: Session, ctx: IngestContext, message: Message) -> None:
    assert ctx.parsed is not None
    for att in ctx.parsed.attachments:
        if att.size > deps.settings.max_message_bytes:
            message.flags = [*message.flags, "attachment-too-large"]
            continue
        sha = deps.blobs.put(att.content)
        session.add(
            Attachment(
                tenant_id=ctx.tenant_id, message_id=message.id, filename=(att.filename or "attachment")[:500],
                content_type=att.content_type[:200], size=att.size, sha256=sha, content_id=att.content_id,
                inline=att.inline,
            )
        )


def _bounce(deps: IngestDeps, session: Session, raw: RawInbound, ctx: IngestContext) -> ProcessResult:
    """Mark the outbound message it bounced as failed and attach the bounce to its ticket."""
    report = ctx.bounce
    original = None
    if report is not None and report.original_message_id:
        original = session.execute(
            select(Message).where(
                Message.email_message_id == report.original_message_id, Message.direction == Direction.OUTBOUND
            )
        ).scalar_one_or_none()
    if original is None:
        return _hold(deps, session, raw, RawInboundStatus.IGNORED, f"{ctx.outcome}; it names no message we sent")
    who = ", ".join(report.failed_recipients) if report and report.failed_recipients else "the recipient"
    kind = "temporarily" if report is not None and report.permanent is False else "permanently"
    if report is None or report.permanent is not False:
        service.set_delivery_state(
            session=session, message=original, state=DeliveryState.FAILED, error=f"bounced {kind} for {who}"
        )
    ticket = service.get_ticket(session=session, ticket_id=original.ticket_id, for_update=True)
    from inbound.ingest.threading import ThreadDecision, ThreadRule

    ctx.thread = ThreadDecision(ThreadRule.IN_REPLY_TO, f"bounce of our message <{original.email_message_id}>", None)
    out = service.append_message(
        session=session, ticket=ticket, message=_new_message(ctx, None, Direction.NOTE),
        actor=Actor(ActorKind.SYSTEM, None, "mail system"), reopen=False,
    )
    record_events(session=session, registry=deps.registry, events=out.events)
    session.flush()
    return _finish(raw, RawInboundStatus.PROCESSED, f"bounce: delivery to {who} failed {kind}; noted on ticket "
                   f"#{ticket.number}", ticket=ticket, message=out.value, rule="bounce")
