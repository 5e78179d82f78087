"""Conversations and transcript: start or resume, accept a visitor message, read history.

Functions take `session` keyword-only and never commit; the API edge commits. A visitor message
is accepted in one transaction: the raw payload with its idempotency key, the transcript row and
the ingest job, so the 2xx means it is durable and will reach the ticket.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from inbound.ingest.accept import store_raw
from inbound.ingest.widget_steps import SOURCE, WidgetFile, WidgetPayload
from inbound.widget.identity import Identity
from inbound.widget.models import WidgetAuthor, WidgetConversation, WidgetMessage

HISTORY_PAGE = 100


def start_conversation(
    *, session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID, resume: WidgetConversation | None,
    identity: Identity, name: str | None, email: str | None, origin: str | None,
) -> WidgetConversation:
    """Resume the token's conversation, or a verified user's latest one, or start a new one."""
    conversation = resume
    if conversation is None and identity.verified:
        conversation = session.execute(
            select(WidgetConversation)
            .where(WidgetConversation.inbox_id == inbox_id, WidgetConversation.external_id == identity.external_id)
            .order_by(WidgetConversation.created_at.desc()).limit(1)
        ).scalar_one_or_none()
    if conversation is not None and conversation.external_id and conversation.external_id != identity.external_id:
        conversation = None  # another user signed in on this browser: never show them the first one's chat
    if conversation is None:
        conversation = WidgetConversation(
            id=uuid.uuid4(), tenant_id=tenant_id, inbox_id=inbox_id, token_version=1, last_seq=0,
            external_id=identity.external_id, origin=origin,
        )
        session.add(conversation)
    name, email = identity.name or name, identity.email or email  # a verified JWT's claims win
    if name:
        conversation.name = name
    if email and (identity.verified or conversation.external_id is None):
        conversation.email = email.strip().lower()
    conversation.last_seen_at = datetime.now(UTC)
    session.flush()
    return conversation


def lock_conversation(*, session: Session, conversation_id: uuid.UUID) -> WidgetConversation | None:
    return session.execute(
        select(WidgetConversation).where(WidgetConversation.id == conversation_id).with_for_update()
    ).scalar_one_or_none()


def append_transcript(
    *, session: Session, conversation: WidgetConversation, author: WidgetAuthor, text: str,
    author_name: str | None, client_message_id: str | None = None, raw_inbound_id: uuid.UUID | None = None,
    message_id: uuid.UUID | None = None, files: tuple[WidgetFile, ...] = (),
) -> WidgetMessage:
    """The next transcript row; the caller holds the conversation's row lock (seq = commit order)."""
    conversation.last_seq += 1
    row = WidgetMessage(
        tenant_id=conversation.tenant_id, conversation_id=conversation.id, seq=conversation.last_seq, author=author,
        author_name=author_name, body_text=text, client_message_id=client_message_id,
        raw_inbound_id=raw_inbound_id, message_id=message_id, created_at=datetime.now(UTC),
        attachments=[{"filename": f.filename, "content_type": f.content_type, "size": f.size, "sha256": f.sha256}
                     for f in files],
    )
    session.add(row)
    session.flush()
    return row


def post_visitor_message(
    *, session: Session, conversation: WidgetConversation, client_message_id: str, text: str,
    files: tuple[WidgetFile, ...] = (),
) -> tuple[WidgetMessage, bool]:
    """Store a visitor message once: (row, True) when new, (the first row, False) for a retry."""
    existing = session.execute(
        select(WidgetMessage).where(WidgetMessage.conversation_id == conversation.id,
                                    WidgetMessage.client_message_id == client_message_id)
    ).scalar_one_or_none()
    if existing is not None:
        return existing, False
    payload = WidgetPayload(conversation.id, client_message_id, text, conversation.name, conversation.email, files)
    accepted = store_raw(
        session=session, tenant_id=conversation.tenant_id, inbox_id=conversation.inbox_id, source=SOURCE,
        payload=payload.to_bytes(), idempotency_key=f"widget:{conversation.id}:{client_message_id}",
        envelope={"conversation_id": str(conversation.id), "client_message_id": client_message_id},
    )
    row = append_transcript(
        session=session, conversation=conversation, author=WidgetAuthor.VISITOR, text=text,
        author_name=conversation.name, client_message_id=client_message_id, raw_inbound_id=accepted.raw_id,
        files=files,
    )
    return row, True


def history(
    *, session: Session, conversation_id: uuid.UUID, after: int, limit: int = HISTORY_PAGE
) -> list[WidgetMessage]:
    return list(session.execute(
        select(WidgetMessage).where(WidgetMessage.conversation_id == conversation_id, WidgetMessage.seq > after)
        .order_by(WidgetMessage.seq).limit(limit)
    ).scalars())
