"""A contact's web chats for `threadline contacts erase`: their conversations (transcripts and
upload references go with them, ON DELETE CASCADE) and the blob hashes the uploads named."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from core.registry import ContactErasure
from inbound.widget.models import WidgetConversation, WidgetMessage


def erase_conversations(session: Session, scope: ContactErasure) -> list[str]:
    """Conversations on the contact's tickets or under their email (also ones not yet a ticket)."""
    ids = select(WidgetConversation.id).where(
        WidgetConversation.tenant_id == scope.tenant_id,
        or_(WidgetConversation.ticket_id.in_(scope.ticket_ids), func.lower(WidgetConversation.email) == scope.email),
    )
    files = session.execute(select(WidgetMessage.attachments).where(
        WidgetMessage.tenant_id == scope.tenant_id, WidgetMessage.conversation_id.in_(ids))).scalars()
    shas = sorted({str(f["sha256"]) for shown in files for f in (shown or []) if f.get("sha256")})
    session.execute(delete(WidgetConversation).where(WidgetConversation.tenant_id == scope.tenant_id,
                                                     WidgetConversation.id.in_(ids)))
    return shas
