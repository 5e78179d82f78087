"""Outbound email jobs: agents' public replies and the per-inbox acknowledgement (architecture §7).

Both are outbox jobs, so they run after the change that asked for them committed, and both are
idempotent:

* `deliver_reply` sends only a `pending` message, at most once: its Message-ID and the state
  `sending` commit *before* the SMTP session (no transaction is open during it), `sent` after
  the 250. An attempt that finds `sending` left by a dead or stalled worker marks the reply
  failed ("may or may not have been sent") instead of sending a second mail. An Undo either
  wins before `sending` or sees it and is refused.
* `send_acknowledgement` records `email.acknowledged` on the timeline and skips when it is
  there; its Message-ID is derived from the ticket id, so a retry re-sends the same id too.

Retry decisions follow the error class (core/jobs/runner.py): a relay's 5xx is permanent
(`PermanentDeliveryError`, a UserError: dead-lettered at once, message `failed`), 4xx and network
errors are temporary (retried with backoff; the last attempt marks the message `failed`).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.blobs import BlobStore
from core.db.session import tenant_scope
from core.jobs import effects, lease
from core.jobs.outbox import record_events
from core.tickets.replies import delivery_event
from core.errors import ConfigurationError, TemporaryFailure, UserError
from core.registry import JobContext
from core.settings import Settings
from core.tenancy.models import Inbox
from core.tickets import service
from core.tickets.models import (
    ActorKind,
    Attachment,
    Channel,
    Contact,
    DeliveryState,
    Direction,
    Message,
    Ticket,
    TicketEvent,
)
from inbound.email import compose
from inbound.email.compose import OutgoingAttachment, OutgoingEmail

log = logging.getLogger(__name__)

DELIVER_JOB = "email.deliver"
COPY_JOB = "email.copy"  # a reply delivered on another channel, also mailed (a web chat visitor who is offline)
ACKNOWLEDGE_JOB = "email.acknowledge"
ACKNOWLEDGED = "email.acknowledged"  # timeline kind: the acknowledgement went out
SENT, FAILED = "email.sent", "email.failed"  # timeline kinds of a reply's delivery
NOT_CONFIGURED = "outbound SMTP is not configured (THREADLINE_OUTBOUND_SMTP_URL)"
# Flags the ingest pipeline puts on automatic mail (inbound/ingest/steps.py).
# "suppress-auto-response": the sender (Exchange X-Auto-Response-Suppress) asked for no automatic mail.
AUTOMATIC_FLAGS = frozenset({"auto-reply", "bounce", "list", "loop", "suppress-auto-response"})
# "dmarc-fail": the From address is forged or unverifiable; an acknowledgement would be backscatter.
NO_ACK_FLAGS = AUTOMATIC_FLAGS | {"dmarc-fail"}
# RFC 3834 §2: never respond to mailing-list owners, list request addresses or mailer daemons.
_NO_RESPONSE_LOCALS = frozenset({"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"})
_ACK_NAMESPACE = uuid.UUID("5f0b6a52-7c53-4a55-9d36-3b7b0f3c1a01")
_DEFAULT_TIMEOUT = 30.0


# ---- errors: the class decides whether the runner retries ----


class PermanentDeliveryError(UserError):
    """Permanent: the relay answered 5xx or the mail cannot be built. Not retried."""


class OutboundNotConfiguredError(ConfigurationError, UserError):
    """No relay URL. An operator must act (ConfigurationError), and retrying cannot help, so it
    is also a UserError: the runner dead-letters it at once instead of retrying for an hour."""


class TemporaryDeliveryError(TemporaryFailure):
    """4xx or the relay is unreachable: retried with backoff."""


_DeliveryError = (PermanentDeliveryError, OutboundNotConfiguredError, TemporaryDeliveryError)


# ---- the relay ----


@dataclass(frozen=True, kw_only=True)
class Relay:
    """Where THREADLINE_OUTBOUND_SMTP_URL points. `password` never reaches a log or an error."""

    host: str
    port: int
    implicit_tls: bool  # smtps:// (RFC 8314 §3.3)
    starttls: str  # "auto" (when offered), "require", "off"
    username: str | None
    password: str | None = field(repr=False)
    timeout: float
    verify: bool

    def __str__(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"


def parse_relay_url(url: str) -> Relay:
    """smtp[s]://user:pass@host:port[?starttls=0|1&timeout=SECONDS&verify=0]."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise OutboundNotConfiguredError("THREADLINE_OUTBOUND_SMTP_URL must look like smtp[s]://user:pass@host:port")
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    try:
        port = parts.port or (465 if parts.scheme == "smtps" else 25)
        timeout = float(query.get("timeout", _DEFAULT_TIMEOUT))
    except ValueError:
        raise OutboundNotConfiguredError("THREADLINE_OUTBOUND_SMTP_URL has a bad port or timeout") from None
    return Relay(
        host=parts.hostname,
        port=port,
        implicit_tls=parts.scheme == "smtps",
        starttls={"0": "off", "1": "require"}.get(query.get("starttls", ""), "auto"),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        timeout=timeout,
        verify=query.get("verify", "1") != "0",
    )


def relay_from_settings(settings: Settings) -> Relay:
    if settings.outbound_smtp_url is None or not settings.outbound_smtp_url.get_secret_value().strip():
        raise OutboundNotConfiguredError(NOT_CONFIGURED)
    return parse_relay_url(settings.outbound_smtp_url.get_secret_value())


@dataclass(frozen=True, kw_only=True)
class Letter:
    mail: OutgoingEmail
    envelope_from: str  # "" is the null reverse-path
    recipient: str


def send_letter(relay: Relay, letter: Letter) -> None:
    """Hand one mail to the relay; raises PermanentDeliveryError or TemporaryDeliveryError."""
    try:
        message = compose.build_message(letter.mail)
    except compose.UnsafeHeader as exc:
        raise PermanentDeliveryError(f"the mail cannot be built safely: {exc}") from exc
    try:
        _smtp_send(relay, message, envelope_from=letter.envelope_from, recipient=letter.recipient,
                   helo=compose.domain_of(letter.mail.from_address))
    except (smtplib.SMTPException, OSError) as exc:
        raise _classify(exc, relay=relay, recipient=letter.recipient) from exc


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    # Built once: loading the system CA bundle costs ~40 ms, more than sending a mail.
    context = ssl.create_default_context()
    if not verify:  # ?verify=0: a local relay with a self-signed certificate
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _smtp_send(relay: Relay, message: Any, *, envelope_from: str, recipient: str, helo: str) -> None:
    # local_hostname: EHLO with our mail domain, not socket.getfqdn() (a slow DNS lookup).
    smtp: smtplib.SMTP
    if relay.implicit_tls:
        smtp = smtplib.SMTP_SSL(
            relay.host, relay.port, local_hostname=helo, timeout=relay.timeout, context=_tls_context(relay.verify)
        )
    else:
        smtp = smtplib.SMTP(relay.host, relay.port, local_hostname=helo, timeout=relay.timeout)
    try:
        smtp.ehlo()
        encrypted = relay.implicit_tls
        if not encrypted and relay.starttls != "off":
            if smtp.has_extn("starttls"):
                smtp.starttls(context=_tls_context(relay.verify))
                smtp.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS
                encrypted = True
            elif relay.starttls == "require":
                raise smtplib.SMTPNotSupportedError("the relay does not offer STARTTLS (starttls=1 requires it)")
        if relay.username:
            if not encrypted and not _is_loopback(relay.host):
                raise smtplib.SMTPNotSupportedError("refusing to send the relay password without TLS")
            smtp.login(relay.username, relay.password or "")
        smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])
    finally:
        # Not `with`: its QUIT raises on a non-221 answer, after the mail was accepted.
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _reply_text(raw: bytes | str) -> str:
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    return compose.clean_text(text)[:300]


def _classify(exc: BaseException, *, relay: Relay, recipient: str) -> PermanentDeliveryError | TemporaryDeliveryError:
    """Plain words for the agent; 5xx (RFC 5321 §4.2.1) is permanent, the rest is retried."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, raw = next(iter(exc.recipients.values()), (0, b""))
        reason = f"the mail server refused the recipient {recipient}: {code} {_reply_text(raw)}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, what = exc.smtp_code, _REFUSED.get(type(exc), "answered")
        reason = f"the mail server {what}: {code} {_reply_text(exc.smtp_error)}"
    elif isinstance(exc, smtplib.SMTPNotSupportedError):
        return PermanentDeliveryError(f"the mail server at {relay} cannot be used: {exc}")
    elif isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentDeliveryError(
            f"the TLS certificate of the mail server at {relay} was not accepted: {exc.verify_message}"
        )
    else:
        return TemporaryDeliveryError(f"could not reach the mail server at {relay}: {type(exc).__name__}: {exc}")
    return PermanentDeliveryError(reason) if 500 <= code < 600 else TemporaryDeliveryError(reason)


_REFUSED: dict[type[smtplib.SMTPResponseException], str] = {
    smtplib.SMTPSenderRefused: "refused our sender address",
    smtplib.SMTPAuthenticationError: "refused our login (check THREADLINE_OUTBOUND_SMTP_URL)",
    smtplib.SMTPDataError: "refused the message",
    smtplib.SMTPConnectError: "refused the connection",
    smtplib.SMTPHeloError: "refused our greeting",
}


# ---- public replies ----


def deliver_reply(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job "email.deliver", payload {"message_id", "ticket_id"}: send one pending reply.

    At most once (issue 10): `pending → sending` (with our Message-ID) commits *before* the SMTP
    session and `sending → sent` after the 250, with no transaction open in between. A later
    attempt that finds `sending` cannot know whether the relay accepted the mail (the worker died
    or stalled mid-send), so it never re-sends: it marks the reply failed and says so, and the
    agent decides. A duplicate mail to a customer is worse than an agent clicking Retry.
    """
    message_id = uuid.UUID(str(payload["message_id"]))
    intent = _record_intent(ctx, message_id)
    if intent is None:
        return
    relay, letter = intent
    try:
        send_letter(relay, letter)
    except _DeliveryError as exc:
        _record_outcome(ctx, message_id, letter, exc)
        raise  # after the commit above, so the failure stays recorded on the message
    _record_outcome(ctx, message_id, letter, None)


IN_DOUBT = ("the worker stopped while handing this reply to the mail server, so it may or may not have "
            "been sent; it was not sent again (check with the customer before resending)")


def _record_intent(ctx: JobContext, message_id: uuid.UUID) -> tuple[Relay, Letter] | None:
    """Short transaction: claim our Message-ID, build the letter, mark `sending`."""
    lease.checkpoint()  # a worker that lost its lease must not start a send
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        # The row lock serialises with Undo: it either wins here, or sees `sending` and refuses.
        message = session.execute(
            select(Message).where(Message.id == message_id).with_for_update()
        ).scalar_one_or_none()
        if message is not None and message.delivery_state is DeliveryState.SENDING:
            _record_failure(session, message, PermanentDeliveryError(IN_DOUBT), ctx=ctx)
            return None
        if _pending_message(session, message_id) is None:
            return None
        assert message is not None
        _assign_message_id(session, message)
        try:
            relay = relay_from_settings(ctx.settings)
            letter = _reply_letter(session, message, blobs=BlobStore.from_settings(ctx.settings))
        except _DeliveryError as exc:
            _record_failure(session, message, exc, ctx=ctx)
            error: Exception = exc
        else:
            service.set_delivery_state(session=session, message=message, state=DeliveryState.SENDING)
            return relay, letter
    raise error  # committed: the failure is on the message


def _record_outcome(ctx: JobContext, message_id: uuid.UUID, letter: Letter, exc: Exception | None) -> None:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = session.execute(select(Message).where(Message.id == message_id).with_for_update()).scalar_one()
        if exc is not None:
            _record_failure(session, message, exc, ctx=ctx)
            return
        # A 250 is the truth even if a newer attempt (this one stalled past its lease) already
        # marked the reply in doubt.
        message.in_reply_to = letter.mail.in_reply_to
        message.references = list(letter.mail.references)
        service.set_delivery_state(session=session, message=message, state=DeliveryState.SENT)
        data = {"message_id": str(message.id), "email_message_id": message.email_message_id}
        _timeline(session, message, SENT, data)
        _announce(session, message, ctx)
        log.info("reply sent", extra=_log_fields(ctx, message))


def deliver_copy(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job "email.copy", payload {"message_id"}: mail a reply that its own channel already delivered.

    The same letter as `deliver_reply` (threading headers, Reply-To token), so the customer's answer
    by mail continues the ticket. The reply's delivery state belongs to its channel and is left
    alone; the send is at most once through the effects ledger, outside any transaction.
    """
    message_id = uuid.UUID(str(payload["message_id"]))
    key = f"{COPY_JOB}:{message_id}"
    lease.checkpoint()
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = _copy_candidate(session, message_id)
        if message is None:
            return
        if effects.begin(session, tenant_id=ctx.tenant_id, key=key, outbox_id=ctx.outbox_id) is not None:
            return  # an earlier attempt sent it, or stopped mid-send: never a second copy
        _assign_message_id(session, message)
        try:
            relay, letter = relay_from_settings(ctx.settings), _reply_letter(
                session, message, blobs=BlobStore.from_settings(ctx.settings))
        except _DeliveryError as exc:
            effects.forget(session, key=key)
            _timeline(session, message, FAILED, {"message_id": str(message.id), "error": str(exc), "copy": True})
            log.info("reply copy not mailed", extra={**_log_fields(ctx, message), "error": str(exc)})
            return  # no address or no relay: the chat has the reply; retrying cannot help
    error: Exception | None = None
    try:
        send_letter(relay, letter)
    except _DeliveryError as exc:
        error = exc
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = session.execute(select(Message).where(Message.id == message_id)).scalar_one()
        if error is not None:
            effects.forget(session, key=key)  # refused cleanly: a retry may send it
            if not isinstance(error, TemporaryDeliveryError) or ctx.attempt > ctx.settings.job_max_retries:
                _timeline(session, message, FAILED, {"message_id": str(message.id), "error": str(error), "copy": True})
        else:
            effects.complete(session, key=key, result={"email_message_id": message.email_message_id})
            message.in_reply_to = letter.mail.in_reply_to
            message.references = list(letter.mail.references)
            _timeline(session, message, SENT,
                      {"message_id": str(message.id), "email_message_id": message.email_message_id, "copy": True})
            log.info("reply copy mailed", extra=_log_fields(ctx, message))
    if error is not None and isinstance(error, TemporaryDeliveryError):
        raise error  # retried with backoff; a permanent refusal is recorded and done


def _copy_candidate(session: Session, message_id: uuid.UUID) -> Message | None:
    """The reply, locked, if its own channel delivered it."""
    message = session.execute(select(Message).where(Message.id == message_id).with_for_update()).scalar_one_or_none()
    return message if message is not None and message.delivery_state is DeliveryState.SENT else None


def _announce(session: Session, message: Message, ctx: JobContext) -> None:
    """Tell the agent surfaces (Slack reaction, notice update) in the same transaction."""
    if ctx.registry is not None:
        record_events(session=session, registry=ctx.registry, events=[delivery_event(message)])


def _pending_message(session: Session, message_id: uuid.UUID) -> Message | None:
    message = session.execute(
        select(Message).where(Message.id == message_id).with_for_update()
    ).scalar_one_or_none()
    if message is None or message.delivery_state is not DeliveryState.PENDING:
        state = message.delivery_state.value if message else "gone"
        log.info("reply not sent: it is not pending", extra={"message_id": str(message_id), "state": state})
        return None
    return message


def _assign_message_id(session: Session, message: Message) -> None:
    """Our Message-ID is the mail's idempotency key: every attempt of this reply uses the same one."""
    if not message.email_message_id:
        inbox = session.execute(
            select(Inbox).join(Ticket, Ticket.inbox_id == Inbox.id).where(Ticket.id == message.ticket_id)
        ).scalar_one()
        message.email_message_id = compose.new_message_id(compose.domain_of(inbox.address))


def _reply_letter(session: Session, message: Message, *, blobs: BlobStore) -> Letter:
    ticket = service.get_ticket(session=session, ticket_id=message.ticket_id)
    inbox = session.get_one(Inbox, ticket.inbox_id)
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    if contact is None or not contact.email:
        raise PermanentDeliveryError("the ticket has no customer email address to reply to")
    others = [m for m in service.ticket_messages(session=session, ticket_id=ticket.id) if m.id != message.id]
    parent = _latest_customer_mail(others)
    ours = [m.email_message_id for m in others
            if m.direction is Direction.OUTBOUND and m.delivery_state is DeliveryState.SENT and m.email_message_id]
    assert message.email_message_id  # claimed in the first transaction
    mail = OutgoingEmail(
        from_address=inbox.address,
        from_name=inbox.name,
        to_address=contact.email,
        to_name=contact.name,
        subject=compose.tagged_subject(ticket.subject, number=ticket.number),
        text=message.body_text,
        html=message.body_html,
        message_id=message.email_message_id,
        in_reply_to=parent.email_message_id if parent else None,
        references=compose.thread_references(
            chain=parent.references if parent else (), parent=parent.email_message_id if parent else None, ours=ours
        ),
        reply_to=compose.reply_address(inbox.address, ticket.reply_token),
        attachments=_attachments(session, message, blobs=blobs),
    )
    return Letter(mail=mail, envelope_from=inbox.address, recipient=contact.email)


def _latest_customer_mail(messages: list[Message]) -> Message | None:
    """The customer's newest real mail (a bounce or auto-reply attached to the ticket is no parent)."""
    for m in reversed(messages):
        if m.direction is Direction.INBOUND and m.email_message_id and not AUTOMATIC_FLAGS & set(m.flags or ()):
            return m
    return None


def _attachments(session: Session, message: Message, *, blobs: BlobStore) -> tuple[OutgoingAttachment, ...]:
    rows = session.execute(
        select(Attachment).where(Attachment.message_id == message.id).order_by(Attachment.created_at, Attachment.id)
    ).scalars()
    out: list[OutgoingAttachment] = []
    for row in rows:
        try:
            content = blobs.get(row.sha256)
        except FileNotFoundError:
            raise PermanentDeliveryError(f"the attachment {row.filename!r} is missing from the blob store") from None
        out.append(OutgoingAttachment(filename=row.filename, content_type=row.content_type, content=content))
    return tuple(out)


def _record_failure(session: Session, message: Message, exc: Exception, *, ctx: JobContext) -> None:
    # Mirrors the runner: attempt N > job_max_retries is the last one, then the job is dead.
    last_attempt = ctx.attempt > ctx.settings.job_max_retries
    if isinstance(exc, TemporaryDeliveryError) and not last_attempt:
        # The relay did not take it: back to pending (from `sending`), safe to try again.
        service.set_delivery_state(session=session, message=message, state=DeliveryState.PENDING,
                                   error=f"{exc} (attempt {ctx.attempt}, will retry)")
        log.warning("reply not sent yet, will retry", extra={**_log_fields(ctx, message), "error": str(exc)})
        return
    reason = f"gave up after {ctx.attempt} attempts: {exc}" if isinstance(exc, TemporaryDeliveryError) else str(exc)
    service.set_delivery_state(session=session, message=message, state=DeliveryState.FAILED, error=reason)
    _timeline(session, message, FAILED, {"message_id": str(message.id), "error": reason})
    _announce(session, message, ctx)
    log.info("reply failed", extra={**_log_fields(ctx, message), "error": reason})


# ---- acknowledgement of new tickets ----


def send_acknowledgement(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job "email.acknowledge", payload {"ticket_id"}: the inbox's automatic 'we got it' mail."""
    ticket_id = uuid.UUID(str(payload["ticket_id"]))
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        # Two runs for one ticket (a replay, a double subscription) queue here, the second then
        # sees the timeline event. An advisory lock, not the ticket row: agents keep working.
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(f"ack:{ticket_id}", 0))))
        ticket = session.get(Ticket, ticket_id)
        refusal, letter = ("the ticket is gone", None) if ticket is None else _ack_letter(session, ticket)
        fields = {"tenant_id": str(ctx.tenant_id), "ticket_id": str(ticket_id), "outbox_id": ctx.outbox_id}
        if letter is None:
            log.info("acknowledgement not sent", extra={**fields, "reason": refusal})
            return
        assert ticket is not None
        send_letter(relay_from_settings(ctx.settings), letter)  # raises before the event is written
        _timeline(session, ticket, ACKNOWLEDGED, {"email_message_id": letter.mail.message_id})
        log.info("acknowledgement sent", extra=fields)


def _ack_letter(session: Session, ticket: Ticket) -> tuple[str, Letter | None]:
    """(why not, None) or ("", the letter). Every refusal is a rule of RFC 3834 §2 or ours."""
    inbox = session.get_one(Inbox, ticket.inbox_id)
    if not inbox.send_acknowledgement:
        return "the inbox does not send acknowledgements", None
    if ticket.channel is not Channel.EMAIL:
        return f"the ticket came in by {ticket.channel.value}, not email", None
    if session.execute(
        select(TicketEvent.id).where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == ACKNOWLEDGED)
    ).first():
        return "already acknowledged", None
    first = next(iter(service.ticket_messages(session=session, ticket_id=ticket.id)), None)
    if first is None or first.direction is not Direction.INBOUND:
        return "the ticket has no customer message to acknowledge", None
    automatic = sorted(NO_ACK_FLAGS & set(first.flags or ()))
    if automatic:
        return f"the first message is automatic or unverified ({', '.join(automatic)}); never answer those", None
    contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
    if contact is None or not contact.email:
        return "the ticket has no customer email address", None
    local = contact.email.rpartition("@")[0].lower()
    ours = set(session.execute(select(Inbox.address)).scalars())
    if contact.email.lower() in ours:
        return "the customer address is one of our inboxes (a loop)", None
    if local in _NO_RESPONSE_LOCALS or local.startswith("owner-") or local.endswith("-request"):
        return "the customer address is a robot or list address", None
    tag = compose.ticket_tag(ticket.number)
    subject = compose.clean_text(ticket.subject) or "(no subject)"
    greeting = f"Hello {compose.clean_text(contact.name)}," if contact.name else "Hello,"
    text = (
        f"{greeting}\n\nThank you for your message. We have opened ticket {tag} \u201c{subject}\u201d "
        f"and will answer as soon as we can.\n\nTo add anything, reply to this email.\n\n{inbox.name}\n"
    )
    domain = compose.domain_of(inbox.address)
    mail = OutgoingEmail(
        from_address=inbox.address,
        from_name=inbox.name,
        to_address=contact.email,
        to_name=contact.name,
        # RFC 3834 §3.1.5: "Auto:" tells people (and filters) this answer was automatic.
        subject=compose.tagged_subject(ticket.subject, number=ticket.number, prefix="Auto"),
        text=text,
        message_id=f"{uuid.uuid5(_ACK_NAMESPACE, str(ticket.id))}@{domain}",
        in_reply_to=first.email_message_id,
        references=compose.thread_references(chain=first.references or (), parent=first.email_message_id, ours=()),
        reply_to=compose.reply_address(inbox.address, ticket.reply_token),
        auto_submitted=True,
    )
    # RFC 3834 §3.3: an automatic response goes out with a null reverse-path, so that a failure
    # to deliver it draws no bounce that could start a loop.
    return "", Letter(mail=mail, envelope_from="", recipient=contact.email)


# ---- shared ----


def _timeline(session: Session, row: Message | Ticket, kind: str, data: dict[str, Any]) -> None:
    ticket_id = row.ticket_id if isinstance(row, Message) else row.id
    session.add(
        TicketEvent(
            tenant_id=row.tenant_id, ticket_id=ticket_id, kind=kind, actor_kind=ActorKind.SYSTEM,
            actor_id=None, actor_label="email", data=data,
        )
    )


def _log_fields(ctx: JobContext, message: Message) -> dict[str, Any]:
    # Ids only: no addresses, no reply token, no relay URL.
    return {
        "tenant_id": str(ctx.tenant_id), "ticket_id": str(message.ticket_id), "message_id": str(message.id),
        "outbox_id": ctx.outbox_id, "attempt": ctx.attempt,
    }
