"""The named ingest steps. Each one decides and records its reason on the context; the
pipeline acts. Order matters and is fixed in `STEPS`."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from core.settings import Settings
from core.tenancy.models import Inbox
from core.tickets.models import Contact, Direction, Message, RawInbound, Ticket, TicketStatus
from inbound.email.autoreply import AutoKind, classify_automatic, suppresses_auto_response
from core.budget import shared_runner
from inbound.email.analyse import Envelope, MailAnalysis, analyse_email
from inbound.smtp.limits import in_networks, parse_networks
from inbound.ingest.accept import duplicate_reason
from inbound.ingest.addresses import split_recipient
from inbound.ingest.context import Disposition, IngestContext, dmarc_failed, semantic_digest
from inbound.ingest.threading import KnownTicket, ThreadDecision, ThreadFacts, ThreadRule, resolve_thread, subject_tag

Step = Callable[[IngestContext, Session, Settings], None]
RATE_WINDOW = timedelta(minutes=10)


def analyse_in_budget(payload: bytes, settings: Settings, envelope: Envelope | None = None) -> MailAnalysis:
    """Parse and run every text heuristic in a child process under the mail budget: hostile
    input cannot hold this worker (raises BudgetExceeded / BudgetCrashed / UnparseableEmail)."""
    runner = shared_runner(seconds=settings.mail_budget_seconds, memory_mb=settings.mail_budget_memory_mb)
    return runner.run(analyse_email, payload, envelope)


def envelope_of(ctx: IngestContext, settings: Settings) -> Envelope:
    trusted_ids = frozenset(i.strip().lower() for i in settings.trusted_authserv_ids.split(",") if i.strip())
    client = ctx.client_ip
    if client and in_networks(client, parse_networks(settings.smtp_trusted_networks)):
        client = None  # a relay hop (our MX, a forwarder): SPF of its address says nothing about the sender
    return Envelope(client_ip=client, helo=ctx.helo, mail_from=ctx.envelope_sender,
                    trusted_authserv_ids=trusted_ids, dns_servers=settings.dns_servers)


def parse(ctx: IngestContext, session: Session, settings: Settings) -> None:
    """Decode once into a frozen ParsedEmail (raises UnparseableEmail: stored raw, flagged)."""
    analysis = analyse_in_budget(ctx.payload, settings, envelope_of(ctx, settings))
    parsed = analysis.parsed
    ctx.parsed = parsed
    ctx.bounce_candidate = analysis.bounce
    ctx.sender_auth = analysis.auth
    if dmarc_failed(ctx):
        ctx.flags.append("dmarc-fail")  # no acknowledgement, no subject-tag threading, "unverified" in Slack
    ctx.digest = semantic_digest(parsed)
    ctx.sender = (parsed.from_.addr if parsed.from_ and parsed.from_.addr else None) or ctx.envelope_sender or None
    if parsed.defects:
        ctx.flags.append("defects")


def dedupe_key(ctx: IngestContext) -> str:
    assert ctx.parsed is not None
    basis = f"{ctx.inbox_id}\x00{ctx.parsed.message_id or ''}\x00{ctx.digest}"
    return hashlib.sha256(basis.encode("utf-8", "surrogatepass")).hexdigest()


def dedupe(ctx: IngestContext, session: Session, settings: Settings) -> None:
    """Same mailbox + Message-ID + same content = the same message. A *different* mail reusing a
    Message-ID (broken mailers, forged mail) is kept and flagged, never silently dropped."""
    assert ctx.parsed is not None
    key = dedupe_key(ctx)
    same = session.execute(
        select(Ticket.number, func.coalesce(RawInbound.received_at, Message.created_at))
        .select_from(Message)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .outerjoin(RawInbound, and_(RawInbound.id == Message.raw_inbound_id, RawInbound.tenant_id == ctx.tenant_id))
        .where(Message.tenant_id == ctx.tenant_id, Message.dedupe_key == key)
    ).first()
    if same is not None:
        ctx.disposition = Disposition.DUPLICATE
        ctx.outcome = duplicate_reason(same[1], same[0])
        return
    if ctx.parsed.message_id and session.execute(
        select(Message.id)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.tenant_id == ctx.tenant_id, Message.email_message_id == ctx.parsed.message_id,
               Ticket.inbox_id == ctx.inbox_id)
        .limit(1)
    ).first():
        ctx.flags.append("message-id-reused")


def _our_sent_message_id(session: Session, tenant_id: uuid.UUID, ids: tuple[str, ...]) -> str | None:
    """The first of ``ids`` that is the Message-ID of a mail we sent."""
    wanted = [i for i in ids if i][:50]
    if not wanted:
        return None
    found = session.execute(
        select(Message.email_message_id)
        .where(Message.tenant_id == tenant_id, Message.email_message_id.in_(wanted),
               Message.direction == Direction.OUTBOUND)
        .limit(1)
    ).scalar_one_or_none()
    return found


def automatic(ctx: IngestContext, session: Session, settings: Settings) -> None:
    """Loops, auto-replies, lists and bounces (RFC 3834, RFC 3464); see inbound/email/autoreply.py.

    Ignore only on evidence: a mail is treated as automatic only on machine-readable marks (a DSN,
    RFC 3834 headers, a null return path, a mailer-daemon sender, our own Message-ID). What the text
    alone suggests ("was not delivered", an address in a quote line) only adds a flag: a customer's
    "Re: my parcel was not delivered" must reach an agent.
    """
    parsed = ctx.parsed
    assert parsed is not None
    own = frozenset(session.execute(select(Inbox.address).where(Inbox.tenant_id == ctx.tenant_id)).scalars())
    if parsed.message_id and session.execute(
        select(Message.id).where(Message.tenant_id == ctx.tenant_id, Message.email_message_id == parsed.message_id,
                                 Message.direction == Direction.OUTBOUND)
    ).first():
        ctx.disposition, ctx.outcome = Disposition.IGNORE, "loop: this is a message we sent ourselves"
        ctx.flags.append("loop")
        return
    verdict = classify_automatic(parsed, own_addresses=own)
    ctx.automatic = verdict
    if suppresses_auto_response(parsed):
        ctx.flags.append("suppress-auto-response")  # Exchange asks: no acknowledgement to this one
    report = ctx.bounce_candidate
    if verdict is None:
        if report is None or not report.failed_recipients:
            return
        # A few real bounces carry no machine marker (flufl.bounce's bounce_02, simple_22...). They
        # count only when they name a message we sent, in the returned copy or in References.
        ours = _our_sent_message_id(session, ctx.tenant_id, (report.original_message_id or "", *parsed.references,
                                              *parsed.in_reply_to))
        if ours is None:
            ctx.flags.append("possible-bounce")
            return
        ctx.bounce = replace(report, original_message_id=ours)
        ctx.flags.append("bounce")
        ctx.disposition = Disposition.BOUNCE
        ctx.outcome = f"bounce: {report.detector} report for {', '.join(report.failed_recipients)}"
        return
    ctx.flags.append(verdict.kind.value.replace("_", "-"))
    if verdict.kind is AutoKind.loop:
        ctx.disposition, ctx.outcome = Disposition.IGNORE, f"loop: {verdict.reason}"
    elif verdict.kind is AutoKind.bounce:
        if report is not None and not report.original_message_id:
            ours = _our_sent_message_id(session, ctx.tenant_id, (*parsed.references, *parsed.in_reply_to))
            report = replace(report, original_message_id=ours) if ours else report
        ctx.bounce = report
        ctx.disposition = Disposition.BOUNCE
        ctx.outcome = f"bounce: {verdict.reason}"


def sender_cap(ctx: IngestContext, session: Session, settings: Settings) -> None:
    """A sender writing faster than any human (a looping autoresponder we did not recognise)."""
    if not ctx.sender:
        return
    since = datetime.now(timezone.utc) - RATE_WINDOW
    # One round trip: an unknown sender simply counts 0 (the contact index, then the author index).
    recent = session.execute(
        select(func.count())
        .select_from(Message)
        .join(Contact, Contact.id == Message.author_contact_id)
        .where(Contact.tenant_id == ctx.tenant_id, Contact.email == ctx.sender.lower(),
               Message.tenant_id == ctx.tenant_id, Message.created_at >= since)
    ).scalar_one()
    if recent >= settings.sender_cap:
        ctx.disposition = Disposition.QUARANTINE
        ctx.outcome = f"quarantined: {recent} mails from {ctx.sender} in 10 minutes (cap {settings.sender_cap})"


def _known(session: Session, tenant_id: uuid.UUID, ids: tuple[str, ...]) -> dict[str, KnownTicket]:
    if not ids:
        return {}
    rows = session.execute(
        select(Message.email_message_id, Ticket.id, Ticket.number)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(Message.tenant_id == tenant_id, Message.email_message_id.in_(list(ids)))
    ).all()
    return {mid: KnownTicket(tid, number) for mid, tid, number in rows if mid}


def thread(ctx: IngestContext, session: Session, settings: Settings) -> None:
    parsed = ctx.parsed
    assert parsed is not None
    by_token: KnownTicket | None = None
    for address in (*ctx.envelope_recipients, *(a.addr for a in (*parsed.to, *parsed.cc))):
        recipient = split_recipient(address)
        if recipient and recipient.reply_token:
            row = session.execute(
                select(Ticket.id, Ticket.number).where(
                    Ticket.tenant_id == ctx.tenant_id, Ticket.reply_token == recipient.reply_token
                )
            ).first()
            if row:
                by_token = KnownTicket(row[0], row[1])
                break
    by_tag, on_it = None, False
    number = subject_tag(parsed.subject)
    if number is not None:
        tagged = session.execute(
            select(Ticket.id, Ticket.number).where(Ticket.tenant_id == ctx.tenant_id, Ticket.number == number)
        ).first()
        if tagged:
            by_tag = KnownTicket(tagged[0], tagged[1])
            # A forged From could otherwise join any ticket whose number it guesses.
            on_it = bool(ctx.sender) and not dmarc_failed(ctx) and bool(
                session.execute(
                    select(Message.id)
                    .join(Contact, Contact.id == Message.author_contact_id)
                    .where(Message.tenant_id == ctx.tenant_id, Message.ticket_id == tagged[0],
                           Contact.email == (ctx.sender or "").lower())
                    .limit(1)
                ).first()
            )
    facts = ThreadFacts(
        in_reply_to=parsed.in_reply_to,
        references=parsed.references,
        by_message_id=_known(session, ctx.tenant_id, (*parsed.in_reply_to, *parsed.references)),
        by_token=by_token,
        by_tag=by_tag,
        sender_on_tagged_ticket=on_it,
    )
    decision = resolve_thread(facts)
    ctx.thread = decision
    if decision.ticket is None:
        if ctx.automatic is not None and ctx.automatic.kind is AutoKind.auto_reply:
            ctx.disposition = Disposition.IGNORE
            ctx.outcome = f"auto-reply that answers no ticket: {ctx.automatic.reason}"
        return
    ticket = session.get(Ticket, decision.ticket.id)
    assert ticket is not None and ticket.tenant_id == ctx.tenant_id
    if ticket.status is TicketStatus.CLOSED and ticket.closed_at is not None:
        age = datetime.now(timezone.utc) - ticket.closed_at
        if age > timedelta(days=settings.reopen_days):
            ctx.linked_ticket_id = ticket.id
            ctx.thread = ThreadDecision(
                ThreadRule.NEW,
                f"{decision.reason}, but it was closed {age.days} days ago (over {settings.reopen_days}): "
                f"new ticket linked to #{ticket.number}",
                None,
            )


def ticket_cap(ctx: IngestContext, session: Session, settings: Settings) -> None:
    if ctx.thread is None or ctx.thread.ticket is None:
        return
    since = datetime.now(timezone.utc) - RATE_WINDOW
    recent = session.execute(
        select(func.count())
        .select_from(Message)
        .where(
            Message.tenant_id == ctx.tenant_id,
            Message.ticket_id == ctx.thread.ticket.id,
            Message.direction == Direction.INBOUND,
            Message.created_at >= since,
        )
    ).scalar_one()
    if recent >= settings.ticket_cap:
        ctx.disposition = Disposition.QUARANTINE
        ctx.outcome = (
            f"quarantined: ticket #{ctx.thread.ticket.number} got {recent} mails in 10 minutes "
            f"(cap {settings.ticket_cap})"
        )


from inbound.ingest.agent_mail import recognise as agent_mail  # noqa: E402 (it imports dedupe_key lazily)

STEPS: tuple[tuple[str, Step], ...] = (
    ("parse", parse),
    ("dedupe", dedupe),
    ("automatic", automatic),
    ("agent_mail", agent_mail),  # an agent's mail (issue 16): acted on as the agent, or held
    ("sender_cap", sender_cap),
    ("thread", thread),
    ("ticket_cap", ticket_cap),
)
