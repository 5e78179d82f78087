"""Erase a contact: their tickets (messages, attachments, drafts, timeline), their messages on
other tickets, their raw mail, and the contact row; one audit entry says who erased what, when.

The ticket timeline is append-only (a trigger refuses UPDATE/DELETE). Erasure removes whole
tickets only, through `threadline_erase_tickets(uuid[])` (migration 0019): a SECURITY DEFINER
function owned by the NOLOGIN role `threadline_eraser`, the one role the trigger lets delete.
RLS still applies inside it, so it reaches the calling tenant only. For a ticket that exists,
nobody can remove a timeline row.

`erase_contact` runs in the caller's tenant unit of work and never commits; the blob files go
after commit (`delete_blobs`), and only when no row of any tenant names the same content hash.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from core.blobs import BlobStore
from core.db.session import system_scope
from core.errors import NotFound
from core.jobs.models import OutboxRow
from core.registry import ContactEraser, ContactErasure
from core.retention.service import referenced_blobs, referencing_columns
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tickets.models import Attachment, Contact, Draft, Message, RawInbound, Ticket


@dataclass(frozen=True)
class ErasureReport:
    contact_id: uuid.UUID
    tickets: int
    messages: int
    attachments: int
    raw: int
    drafts: int
    blob_candidates: list[str] = field(default_factory=list)  # delete after commit (delete_blobs)


def erase_contact(
    *, session: Session, tenant_id: uuid.UUID, email: str, audit: AuditContext, erasers: Sequence[ContactEraser] = ()
) -> ErasureReport:
    """`erasers`: the registry's `contact_erasers` (adapters' own rows, e.g. widget transcripts)."""
    email = email.strip().lower()
    contact = session.execute(
        select(Contact).where(Contact.tenant_id == tenant_id, func.lower(Contact.email) == email)
    ).scalar_one_or_none()
    if contact is None:
        raise NotFound(f"no contact {email}")
    ticket_ids = list(session.execute(
        select(Ticket.id).where(Ticket.tenant_id == tenant_id, Ticket.contact_id == contact.id)).scalars())
    # Their messages on other people's tickets go one by one (those tickets and timelines stay).
    other_msgs = list(session.execute(select(Message.id).where(
        Message.tenant_id == tenant_id, Message.author_contact_id == contact.id,
        Message.ticket_id.not_in(ticket_ids))).scalars())
    all_msgs = select(Message.id).where(Message.tenant_id == tenant_id,
                                        (Message.ticket_id.in_(ticket_ids)) | (Message.id.in_(other_msgs)))
    shas = sorted(set(session.execute(select(Attachment.sha256).where(Attachment.message_id.in_(all_msgs))).scalars()))
    attachments = session.execute(select(func.count()).where(Attachment.message_id.in_(all_msgs))).scalar_one()
    messages = session.execute(select(func.count()).select_from(all_msgs.subquery())).scalar_one()
    raw_ids = list(session.execute(select(RawInbound.id).where(
        RawInbound.tenant_id == tenant_id,
        RawInbound.ticket_id.in_(ticket_ids) | RawInbound.message_id.in_(all_msgs)
        | RawInbound.id.in_(select(Message.raw_inbound_id).where(Message.id.in_(all_msgs)))
        | func.strpos(func.lower(RawInbound.summary["from"].astext), email).__gt__(0),
    )).scalars())
    drafts = session.execute(select(func.count()).where(
        Draft.tenant_id == tenant_id, Draft.ticket_id.in_(ticket_ids) | Draft.for_message_id.in_(other_msgs)
    )).scalar_one()
    # Adapters first: their rows may name the tickets, messages and raw mail erased below.
    scope = ContactErasure(tenant_id, contact.id, email, tuple(ticket_ids))
    adapter_shas = {sha for eraser in erasers for sha in eraser(session, scope)}

    session.execute(delete(Draft).where(Draft.tenant_id == tenant_id, Draft.for_message_id.in_(other_msgs)))
    session.execute(update(Ticket).where(Ticket.tenant_id == tenant_id, Ticket.linked_ticket_id.in_(ticket_ids))
                    .values(linked_ticket_id=None))
    session.execute(delete(OutboxRow).where(OutboxRow.tenant_id == tenant_id, OutboxRow.ticket_id.in_(ticket_ids)))
    if ticket_ids:
        session.execute(text("SELECT threadline_erase_tickets(CAST(:ids AS uuid[]))"),
                        {"ids": [str(t) for t in ticket_ids]})
    if other_msgs:
        session.execute(delete(Message).where(Message.tenant_id == tenant_id, Message.id.in_(other_msgs)))
    if raw_ids:
        for table, column in referencing_columns(session, "raw_inbound"):
            session.execute(text(f'UPDATE {table} SET "{column}" = NULL WHERE "{column}" = ANY(:ids)'),
                            {"ids": raw_ids})
        session.execute(delete(RawInbound).where(RawInbound.tenant_id == tenant_id, RawInbound.id.in_(raw_ids)))
    session.delete(contact)
    session.flush()
    # Who erased what, when (created_at); the address only as a hash: the log must not keep it.
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit, action="contact.erased",
                     target=f"contact:{contact.id}",
                     data={"email_sha256": hashlib.sha256(email.encode()).hexdigest(), "tickets": len(ticket_ids),
                           "messages": messages, "attachments": attachments, "raw": len(raw_ids), "drafts": drafts})
    return ErasureReport(contact.id, len(ticket_ids), messages, attachments, len(raw_ids), drafts,
                         sorted(set(shas) | adapter_shas))


def delete_blobs(factory: sessionmaker[Session], store: BlobStore, shas: list[str]) -> int:
    """After commit: remove the files no row of any tenant still names (shared content stays)."""
    if not shas:
        return 0
    with system_scope(factory) as session:
        keep = referenced_blobs(session, shas)
    removed = 0
    for sha in shas:
        if sha not in keep and store.path(sha).exists():
            store.path(sha).unlink()
            removed += 1
    return removed
