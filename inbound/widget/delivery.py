"""`widget.deliver`: an agent's public reply on a web chat ticket reaches the visitor.

Runs after the undo window like mail delivery. In one transaction it appends the reply to the
conversation's transcript and marks the message sent (so it happens once, whoever runs it); the
live hint is published only after commit.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select

from core.db.session import tenant_scope
from core.jobs.outbox import record_events
from core.registry import JobContext
from core.tickets import replies, service
from core.tickets.models import DeliveryState
from inbound.widget import fanout
from inbound.widget.models import WidgetAuthor, WidgetConversation, WidgetMessage
from inbound.widget.service import append_transcript, lock_conversation

log = logging.getLogger(__name__)

DELIVER_JOB = "widget.deliver"


def deliver_reply(ctx: JobContext, payload: dict[str, Any]) -> None:
    message_id = uuid.UUID(payload["message_id"])
    hint: tuple[uuid.UUID, int] | None = None
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        if message.delivery_state is not DeliveryState.PENDING:
            return  # sent before, cancelled by Undo, or failed for good
        conversation_id = session.execute(
            select(WidgetConversation.id).where(WidgetConversation.ticket_id == message.ticket_id)
        ).scalar_one_or_none()
        conversation = lock_conversation(session=session, conversation_id=conversation_id) if conversation_id else None
        if conversation is None:
            service.set_delivery_state(session=session, message=message, state=DeliveryState.FAILED,
                                       error="this ticket has no web chat conversation")
        else:
            done = session.execute(select(WidgetMessage.seq).where(WidgetMessage.message_id == message.id)).scalar()
            seq = done if done is not None else append_transcript(
                session=session, conversation=conversation, author=WidgetAuthor.AGENT, text=message.body_text,
                author_name=message.author_name, message_id=message.id,
            ).seq
            service.set_delivery_state(session=session, message=message, state=DeliveryState.SENT)
            hint = (conversation.id, seq)
        if ctx.registry is not None:
            record_events(session=session, registry=ctx.registry, events=[replies.delivery_event(message)])
    if hint is not None and ctx.settings.redis_url is not None:
        fanout.publish(ctx.settings.redis_url.get_secret_value(), conversation_id=hint[0], seq=hint[1])
