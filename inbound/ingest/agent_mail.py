"""An agent's mail is an agent action, never a customer message (issue 16).

`recognise` is an ingest step (after the automatic-mail rules): a mail that carries an agent
token (`support+<token>@…`, `support+note-<token>@…`) or answers one of our notifications
(In-Reply-To/References, RFC 5322 §3.6.4) counts as the agent's only when it comes from that
agent's own address **and** that address is authenticated (DMARC pass, checked here or vouched
for by a trusted relay's Authentication-Results, RFC 8601). A From header alone proves nothing
(RFC 5322 §3.6.2: anyone can write any From). Everything else that carries an agent token, or
comes from an agent's address without one, is held with the reason: it never reaches the
customer, nor the ticket as a customer message. An agent's auto-reply to a notification (RFC
3834) is ignored. The step only decides; `act` (called by the pipeline) does the work with the
same core services Slack uses: replies (undo window), notes, status, assignment, drafts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.attachments.files import StoredFile, size_refusal
from core.blobs import BlobStore
from core.errors import ThreadlineError
from core.jobs.outbox import enqueue, record_events
from core.registry import Registry
from core.settings import Settings
from core.tenancy.models import Agent, AgentRole, AgentTicketToken, Inbox
from core.tickets import agent_tokens, drafts, replies, service
from core.tickets.events import DomainEvent
from core.tickets.intents import (
    MAX_COMMAND_LINES,
    AgentMail,
    MailCommand,
    MailCommandKind,
    ThreadIntent,
    classify_thread_text,
    parse_agent_mail,
)
from core.tickets.models import ActorKind, Channel, Direction, Draft, DraftState, Message, Priority, Ticket
from core.tickets.schemas import Actor, NewMessage
from inbound.email.authenticity import DmarcResult
from inbound.email.model import ParsedAttachment
from inbound.email.notify import NOTIFY_JOB, refusal_payload
from inbound.ingest.addresses import split_recipient
from inbound.ingest.context import AgentMatch, Disposition, IngestContext


@dataclass(frozen=True)
class _Claim:
    """What the mail claims: an agent token (maybe unknown) and whether it is the note address."""

    token: AgentTicketToken | None
    note_address: bool
    how: str  # for the reason: "the agent token" or "a notification's Message-ID"


def _claim(ctx: IngestContext, session: Session) -> _Claim | None:
    parsed = ctx.parsed
    assert parsed is not None
    for address in (*ctx.envelope_recipients, *(a.addr for a in (*parsed.to, *parsed.cc))):
        recipient = split_recipient(address)
        if recipient is None or recipient.reply_token is None:
            continue
        token, note = agent_tokens.split_note(recipient.reply_token)
        if note or agent_tokens.looks_like_agent_token(token):
            return _Claim(agent_tokens.find_token(session=session, tenant_id=ctx.tenant_id, token=token), note, "the agent token")
    by_header = agent_tokens.token_by_notification(session=session, tenant_id=ctx.tenant_id,
                                                   message_ids=(*parsed.in_reply_to, *parsed.references))
    if by_header is not None:
        return _Claim(by_header, False, "a notification's Message-ID")
    return None


def _hold(ctx: IngestContext, reason: str) -> None:
    ctx.disposition = Disposition.QUARANTINE
    ctx.outcome = f"held: {reason}; nothing was sent to the customer"
    ctx.flags.append("agent-mail-refused")


def refusal(ctx: IngestContext, agent: Agent, token: AgentTicketToken) -> str | None:
    """Why this mail may not act for ``agent`` (None: it may). Every rule is evidence, not a guess."""
    sender = (ctx.sender or "").lower()
    if token.revoked_at is not None or not agent.active:
        return "the agent token was revoked (the agent is deactivated or the token withdrawn)"
    if not agent.email or sender != agent.email.lower():
        return f"the agent token of {agent.name} was used from {sender or 'no address'}, not from the agent's address"
    auth = ctx.sender_auth
    if auth is None or auth.dmarc is not DmarcResult.PASS:
        result = auth.dmarc.value if auth else "not checked"
        return f"the sender {sender} is not authenticated (DMARC {result}): a From header alone proves nothing"
    if agent.role is AgentRole.READ_ONLY:
        return _read_only(agent)
    return None


def _read_only(agent: Agent) -> str:
    return f"{agent.name} is a read-only agent and cannot act on tickets"


def _answer_refusal(session: Session, ctx: IngestContext, agent: Agent, ticket_id: uuid.UUID,
                    refusals: list[str]) -> None:
    """One short reply to the agent's own verified address saying what was refused (inbound/email/notify.py)."""
    if ctx.automatic is not None or ctx.parsed is None:
        return
    enqueue(session=session, tenant_id=ctx.tenant_id, job=NOTIFY_JOB, ticket_id=ticket_id,
            payload=refusal_payload(raw_id=ctx.raw_id, agent_id=agent.id, ticket_id=ticket_id, refusals=refusals,
                                    message_id=ctx.parsed.message_id, subject=ctx.parsed.subject or ""))


_COMMAND_VERBS = frozenset({"resolve", "pending", "open", "reopen", "close", "assign", "priority", "send-draft",
                            "reply"})


def malformed_commands(text: str) -> tuple[list[str], str]:
    """Leading lines that name a known command but do not parse (`#priority bogus`, `#assign bob`):
    refused and kept from the customer, not sent as text. Returns them and the text after them."""
    lines = text.split("\n", MAX_COMMAND_LINES + 1)
    refused: list[str] = []
    consumed = 0
    for line in lines[:MAX_COMMAND_LINES]:
        stripped = line.strip()
        if not stripped:
            consumed += 1
            continue
        words = stripped[1:].lower().split() if stripped.startswith("#") and len(stripped) <= 80 else []
        if not words or words[0] not in _COMMAND_VERBS or parse_agent_mail(stripped).commands:
            break  # text, or a well-formed command (the caller parses on from here)
        refused.append(stripped)
        consumed += 1
    return refused, "\n".join(lines[consumed:]).strip() if refused else text


def _malformed_reason(line: str) -> str:
    verb = line[1:].split()[0].lower()
    if verb == "priority":
        return f"{line}: the priority is one of {', '.join(p.value for p in Priority)}"
    if verb == "assign":
        return f"{line}: only '#assign me' is known"
    return f"{line}: this command takes no words after it"


def recognise(ctx: IngestContext, session: Session, settings: Settings) -> None:
    """Step: a verified agent mail → Disposition.AGENT; a mail that only claims to be one → held."""
    claim = _claim(ctx, session)
    if claim is None:
        sender = (ctx.sender or "").lower()
        if sender and session.execute(select(Agent.id).where(Agent.tenant_id == ctx.tenant_id, func.lower(Agent.email) == sender,
                                                             Agent.active.is_(True))).first():
            # Without a token nothing says which ticket the agent meant, and a forged From would
            # otherwise land on tickets as "the agent": an agent opens tickets by forwarding on release.
            _hold(ctx, f"mail from the agent address {sender} without an agent token (reply to a notification)")
        return
    if claim.token is None:
        _hold(ctx, "unknown or revoked agent token")
        return
    agent = session.get(Agent, claim.token.agent_id)
    assert agent is not None  # the foreign key cascades
    if ctx.automatic is not None:
        # RFC 3834: an out-of-office answering a notification is not the agent's word.
        ctx.disposition = Disposition.IGNORE
        ctx.outcome = f"automatic reply from {agent.name} to a notification ({ctx.automatic.reason}): ignored"
        return
    why = refusal(ctx, agent, claim.token)
    if why is not None:
        _hold(ctx, why)
        if agent.role is AgentRole.READ_ONLY and why == _read_only(agent):  # the last rule: the sender is verified
            _answer_refusal(session, ctx, agent, claim.token.ticket_id, [why])
        return
    ctx.disposition = Disposition.AGENT
    ctx.agent = AgentMatch(agent.id, claim.token.ticket_id, claim.note_address)
    ctx.outcome = f"agent mail from {agent.name} (by {claim.how})"


# ---- acting on a verified agent mail ----


@dataclass(frozen=True)
class AgentMailResult:
    outcome: str
    ticket: Ticket
    message: Message | None


def act(settings: Settings, registry: Registry, session: Session, ctx: IngestContext) -> AgentMailResult:
    """Text first (reply or note), then the commands in order; a refused command is reported, not fatal."""
    match, parsed = ctx.agent, ctx.parsed
    assert match is not None and parsed is not None
    from inbound.ingest.steps import dedupe_key  # steps.py lists `recognise` among its steps

    ticket = service.get_ticket(session=session, ticket_id=match.ticket_id, for_update=True)
    agent = session.get_one(Agent, match.agent_id)
    inbox = session.get_one(Inbox, ticket.inbox_id)
    actor = Actor(ActorKind.AGENT, str(agent.id), agent.name)
    # reply_text: our notification (quoted below the answer) and the signature are already cut.
    words = parse_agent_mail(parsed.reply_text)
    malformed: list[str] = []
    for _ in range(MAX_COMMAND_LINES):  # commands after a malformed one still count
        bad, rest = malformed_commands(words.text)
        if not bad:
            break
        malformed += bad
        more = parse_agent_mail(rest)
        words = AgentMail((*words.commands, *more.commands), more.text)
    refused = [_malformed_reason(line) for line in malformed]
    events: list[DomainEvent] = []
    done: list[str] = [f"#{line[1:]} refused" for line in malformed]
    message: Message | None = None
    if words.text:
        meaning = classify_thread_text(words.text, reply_mode=inbox.reply_mode)
        wants_reply = any(c.kind is MailCommandKind.REPLY for c in words.commands)
        public = not match.note_address and (
            meaning.intent is ThreadIntent.PUBLIC_REPLY or (meaning.intent is ThreadIntent.INTERNAL and wants_reply))
        text = meaning.text if meaning.intent is ThreadIntent.NOTE else words.text
        files = reply_files(parsed.attachments)
        too_large = size_refusal([(f.filename, f.size) for f in files], per_file=settings.attachment_max_file_bytes,
                                 per_reply=settings.attachment_max_reply_bytes) if public else None
        if too_large is not None:  # never the text without its files: kept as a note that says why
            public, text = False, f"(Not sent to the customer: {too_large}.)\n\n{text}"
        if public:
            blobs = BlobStore.from_settings(settings)
            out = replies.send_public_reply(
                session=session, registry=registry, ticket=ticket, text=text, actor=actor, author_agent_id=agent.id,
                source=Channel.EMAIL, delay_seconds=settings.undo_seconds, dedupe_key=dedupe_key(ctx),
                files=[StoredFile(blobs.put(f.content), f.filename or "attachment", f.content_type, f.size)
                       for f in files],
            )
            done.append("replied to the customer" + (f" with {len(files)} file(s)" if files else ""))
        else:
            out = service.append_message(
                session=session, ticket=ticket, actor=actor,
                message=NewMessage(direction=Direction.NOTE, source=Channel.EMAIL, body_text=text,
                                   author_agent_id=agent.id, author_name=agent.name, dedupe_key=dedupe_key(ctx),
                                   raw_inbound_id=ctx.raw_id, flags=("agent-mail",)),
            )
            done.append("added an internal note" + (f" (reply not sent: {too_large})" if too_large else ""))
        events += out.events
        message = out.value
    for command in words.commands:
        try:
            events += _run_command(settings, registry, session, ticket, agent, actor, command)
            done.append(f"#{_label(command)}")
        except ThreadlineError as exc:  # a refused command (no draft, a status it cannot take): say why
            done.append(f"#{_label(command)} refused: {exc}")
            refused.append(f"#{_label(command)}: {exc}")
    record_events(session=session, registry=registry, events=events)
    if refused:
        _answer_refusal(session, ctx, agent, ticket.id, refused)
    summary = "; ".join(done) or "nothing to do (no text, no command)"
    return AgentMailResult(f"agent mail from {agent.name} on ticket #{ticket.number}: {summary}", ticket, message)


SIGNATURE_IMAGE_BYTES = 64 * 1024


def reply_files(attachments: Sequence[ParsedAttachment]) -> list[ParsedAttachment]:
    """The files an agent's mail reply carries to the customer. Small inline images referenced by
    Content-ID are left out: they are the agent's signature logo (or our own notification's images),
    shown by the agent's HTML, while the customer gets the reply's text. A larger inline image (a pasted
    screenshot) and every real attachment go with the reply."""
    return [a for a in attachments if not (a.inline and a.content_id and a.content_type.startswith("image/")
                                            and a.size <= SIGNATURE_IMAGE_BYTES)]


def _label(command: MailCommand) -> str:
    if command.kind is MailCommandKind.STATUS and command.status is not None:
        return f"status {command.status.value}"
    if command.kind is MailCommandKind.PRIORITY and command.priority is not None:
        return f"priority {command.priority.value}"
    return command.kind.value


def _run_command(
    settings: Settings, registry: Registry, session: Session, ticket: Ticket, agent: Agent, actor: Actor,
    command: MailCommand,
) -> list[DomainEvent]:
    if command.kind is MailCommandKind.STATUS and command.status is not None:
        return service.change_status(session=session, ticket=ticket, status=command.status, actor=actor).events
    if command.kind is MailCommandKind.ASSIGN_ME:
        return service.assign(session=session, ticket=ticket, agent_id=agent.id, actor=actor).events
    if command.kind is MailCommandKind.PRIORITY and command.priority is not None:
        return service.change_priority(session=session, ticket=ticket, priority=command.priority, actor=actor).events
    if command.kind is MailCommandKind.SEND_DRAFT:
        draft_id = session.execute(
            select(Draft.id).where(Draft.ticket_id == ticket.id, Draft.state == DraftState.PENDING)
            .order_by(Draft.created_at.desc()).limit(1)
        ).scalar_one_or_none()
        if draft_id is None:
            raise _NoDraft("there is no pending draft on this ticket")
        return drafts.send(session=session, registry=registry, draft_id=draft_id, actor=actor, agent_id=agent.id,
                           edited_text=None, source=Channel.EMAIL, delay_seconds=settings.undo_seconds).events
    return []  # #reply only changes what the text means (explicit mode)


class _NoDraft(ThreadlineError):
    pass
