"""Jobs that carry a web chat ticket's life back to the visitor.

* `widget.deliver`: an agent's public reply, after the undo window like mail. In one transaction
  it appends the reply to the transcript and marks the message sent (so it happens once, whoever
  runs it); when the visitor left an email and no socket of theirs is open, the same transaction
  asks `email.copy` to mail it too (the email path's own letter: threading headers, Reply-To token).
* `widget.mirror` (on message.appended): the customer's answer *by mail* to such a copy lands on
  the ticket through the normal email ingest; it is appended to the transcript so the chat shows it.
* `widget.status` (on ticket.status_changed): a status hint on the socket (resolved, reopened).
Live hints are published only after commit.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.attachments import serving
from core.blobs import BlobStore
from core.db.session import tenant_scope
from core.jobs.outbox import enqueue, record_events
from core.registry import JobContext
from core.tickets import replies, service
from core.tickets.models import Attachment, Channel, DeliveryState, Direction, Message, Ticket
from inbound.email.outbound import COPY_JOB
from inbound.ingest.widget_steps import WidgetFile
from inbound.widget import fanout, presence
from inbound.widget.models import WidgetAuthor, WidgetConversation, WidgetMessage
from inbound.widget.service import append_transcript, lock_conversation

log = logging.getLogger(__name__)

DELIVER_JOB = "widget.deliver"
MIRROR_JOB = "widget.mirror"
STATUS_JOB = "widget.status"


def _redis_url(ctx: JobContext) -> str | None:
    return ctx.settings.redis_url.get_secret_value() if ctx.settings.redis_url is not None else None


def _conversation_of(session: Session, ticket_id: uuid.UUID) -> WidgetConversation | None:
    conversation_id = session.execute(
        select(WidgetConversation.id).where(WidgetConversation.ticket_id == ticket_id)
    ).scalar_one_or_none()
    return lock_conversation(session=session, conversation_id=conversation_id) if conversation_id else None


def deliver_reply(ctx: JobContext, payload: dict[str, Any]) -> None:
    message_id = uuid.UUID(payload["message_id"])
    hint: tuple[uuid.UUID, int] | None = None
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        if message.delivery_state is not DeliveryState.PENDING:
            return  # sent before, cancelled by Undo, or failed for good
        conversation = _conversation_of(session, message.ticket_id)
        if conversation is None:
            service.set_delivery_state(session=session, message=message, state=DeliveryState.FAILED,
                                       error="this ticket has no web chat conversation")
        else:
            done = session.execute(select(WidgetMessage.seq).where(WidgetMessage.message_id == message.id)).scalar()
            seq = done if done is not None else append_transcript(
                session=session, conversation=conversation, author=WidgetAuthor.AGENT, text=message.body_text,
                author_name=message.author_name, message_id=message.id,
                files=_reply_files(session, message, BlobStore.from_settings(ctx.settings)),
            ).seq
            service.set_delivery_state(session=session, message=message, state=DeliveryState.SENT)
            hint = (conversation.id, seq)
            if conversation.email and not presence.online(_redis_url(ctx), conversation.id):
                _ask_for_mail_copy(session, message, conversation.email, conversation.name)
        if ctx.registry is not None:
            record_events(session=session, registry=ctx.registry, events=[replies.delivery_event(message)])
    url = _redis_url(ctx)
    if hint is not None and url is not None:
        fanout.publish(url, conversation_id=hint[0], seq=hint[1])


def _reply_files(session: Session, message: Message, blobs: BlobStore) -> tuple[WidgetFile, ...]:
    """The agent's files, for the visitor's signed download links (inbound/widget/downloads.py); the
    type they are served with is sniffed from the bytes (markup as octet-stream), not the sender's claim."""
    rows = session.execute(select(Attachment).where(Attachment.tenant_id == message.tenant_id,
                                                    Attachment.message_id == message.id, Attachment.inline.is_(False))
                           .order_by(Attachment.created_at, Attachment.id)).scalars()
    files: list[WidgetFile] = []
    for row in rows:
        try:
            with blobs.path(row.sha256).open("rb") as fh:
                served = serving.sniff(fh.read(serving.SNIFF_BYTES)).split(";", 1)[0]
        except FileNotFoundError:
            continue  # erased since: the reply's text still goes
        files.append(WidgetFile(row.sha256, row.size, served, row.filename))
    return tuple(files)


def _ask_for_mail_copy(session: Session, message: Message, email: str, name: str | None) -> None:
    """The visitor is away: mail the reply too. The ticket needs them as its contact to be mailed."""
    ticket = session.get_one(Ticket, message.ticket_id)
    if ticket.contact_id is None:
        contact = service.find_or_create_contact(session=session, tenant_id=ticket.tenant_id, email=email, name=name)
        ticket.contact_id = contact.id
    enqueue(session=session, tenant_id=ticket.tenant_id, job=COPY_JOB, ticket_id=ticket.id,
            payload={"message_id": str(message.id), "ticket_id": str(ticket.id)})


def mirror_email(ctx: JobContext, payload: dict[str, Any]) -> None:
    """A customer's mail on a web chat ticket joins the transcript once (message_id is unique there)."""
    if payload.get("direction") != Direction.INBOUND.value:
        return
    hint: tuple[uuid.UUID, int] | None = None
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = session.get(Message, uuid.UUID(payload["message_id"]))
        if message is None or message.source is not Channel.EMAIL:
            return  # the visitor's own chat messages are in the transcript from the start
        conversation = _conversation_of(session, message.ticket_id)
        if conversation is None:
            return
        if session.execute(select(WidgetMessage.id).where(WidgetMessage.message_id == message.id)).first():
            return
        row = append_transcript(
            session=session, conversation=conversation, author=WidgetAuthor.VISITOR,
            text=message.reply_text or message.body_text, author_name=message.author_name, message_id=message.id,
        )
        hint = (conversation.id, row.seq)
    url = _redis_url(ctx)
    if hint is not None and url is not None:
        fanout.publish(url, conversation_id=hint[0], seq=hint[1])


def status_hint(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Tell an open chat that its ticket was resolved or reopened (the page says so)."""
    ticket_id, status = payload.get("ticket_id"), payload.get("to")
    url = _redis_url(ctx)
    if not ticket_id or not status or url is None:
        return
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        conversation_id = session.execute(
            select(WidgetConversation.id).where(WidgetConversation.ticket_id == uuid.UUID(ticket_id))
        ).scalar_one_or_none()
    if conversation_id is not None:
        fanout.publish(url, conversation_id=conversation_id, status=str(status))
