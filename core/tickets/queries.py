"""Ticket lists and full-text search, fast at a million tickets (the admin API and the CLI).

Lists are newest first and keyset-paginated over (created_at, id). The page's ids are chosen
first, from the columns the indexes of migration 0023 cover: unfiltered, by status, by inbox and
status, each in keyset order with the tags included, so a page is an index-only scan that stops
after `limit` matches at any depth; then the rows of those ids are read. Search uses Postgres FTS
(the `simple` configuration: no stemming, mail comes in every language and a word is found as
written) over one search document per ticket (`ticket_search`, migration 0027: the subject and
every message's text, stripped of positions and bounded, plus its tenant and month as one more
lexeme, kept current by triggers; core/tickets/search_doc.py), so every word of a query may come
from any message of the ticket and a quoted phrase matches its words anywhere in it. Matching ids come from
`threadline_search_ticket_ids` (migrations 0021, 0027): under RLS, `@@` is not LEAKPROOF, so the
planner may not use it as an index condition in a query of `threadline_app`; the SECURITY DEFINER
function filters the caller's tenant itself (from `app.tenant_id`, never an argument) and returns
the newest matches older than the cursor: the page itself for a text-only search, else up to
`MAX_SEARCH_HITS` to which the other filters apply (so a filtered search over a query matching more
than that may end early).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TypeVar

from sqlalchemy import ColumnElement, Select, func, select, tuple_
from sqlalchemy.orm import Session

from core.db.session import scoped_tenant
from core.errors import NotFound
from core.tickets.models import Attachment, Contact, Message, Priority, Ticket, TicketStatus

_Row = TypeVar("_Row")

MAX_QUERY_CHARS = 200
MAX_SEARCH_HITS = 10_000  # the function clamps to this too


@dataclass(frozen=True)
class TicketFilter:
    """Every field narrows the list; lists are ORed within a field (status=new or open)."""

    statuses: tuple[TicketStatus, ...] = ()
    priorities: tuple[Priority, ...] = ()
    inbox_ids: tuple[uuid.UUID, ...] = ()
    assignee_id: uuid.UUID | None = None
    unassigned: bool = False
    contact_email: str | None = None
    tags: tuple[str, ...] = field(default=())  # all of them
    created_since: datetime | None = None  # inclusive
    created_until: datetime | None = None  # exclusive
    updated_since: datetime | None = None
    updated_until: datetime | None = None
    text: str | None = None  # web-search syntax: words, "a phrase", -excluded, or


def _filtered(stmt: Select[_Row], where: TicketFilter) -> Select[_Row]:  # noqa: C901
    if where.statuses:
        stmt = stmt.where(Ticket.status.in_(where.statuses))
    if where.priorities:
        stmt = stmt.where(Ticket.priority.in_(where.priorities))
    if where.inbox_ids:
        stmt = stmt.where(Ticket.inbox_id.in_(where.inbox_ids))
    if where.assignee_id is not None:
        stmt = stmt.where(Ticket.assignee_id == where.assignee_id)
    elif where.unassigned:
        stmt = stmt.where(Ticket.assignee_id.is_(None))
    if where.contact_email:
        contact = select(Contact.id).where(Contact.email == where.contact_email.strip().lower())
        stmt = stmt.where(Ticket.contact_id.in_(contact.scalar_subquery()))
    if where.tags:
        stmt = stmt.where(Ticket.tags.contains(list(where.tags)))
    for column, since, until in ((Ticket.created_at, where.created_since, where.created_until),
                                 (Ticket.updated_at, where.updated_since, where.updated_until)):
        if since is not None:
            stmt = stmt.where(column >= since)
        if until is not None:
            stmt = stmt.where(column < until)
    return stmt


def _matching_ids(text: str, *, after: tuple[datetime, uuid.UUID] | None, max_rows: int) -> ColumnElement[bool]:
    """`tickets.id` is one of the newest `max_rows` matches older than `after` (the function uses the GIN index)."""
    before_created, before_id = after if after is not None else (None, None)
    hits = func.threadline_search_ticket_ids(text[:MAX_QUERY_CHARS], max_rows, before_created, before_id)
    # = ANY(ARRAY(...)): the ids are looked up through the primary key, whatever the tenant's size.
    return Ticket.id == func.any(func.array(select(hits).scalar_subquery()))


def ticket_list_statement(
    where: TicketFilter, *, tenant_id: uuid.UUID | None, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> Select[Ticket]:
    """The list query (bench/api.py explains this very statement).

    The page's ids are chosen first, over the ticket columns only, so that a filter the indexes of
    migrations 0023 and 0025 cover (statuses, inbox, tag, priority, assignee) is an index-only scan
    in keyset order that stops after `limit` matches; the rows are read for those ids alone."""
    page: Select[uuid.UUID] = _filtered(select(Ticket.id), where)
    if tenant_id is not None:  # explicit as well as RLS; it also lets the planner match index prefixes
        page = page.where(Ticket.tenant_id == tenant_id)
    if where.text and where.text.strip():
        # Only text: the function's newest `limit` matches are the page. With other filters, they
        # apply to its matches, so it returns up to MAX_SEARCH_HITS of them.
        only_text = replace(where, text=None) == TicketFilter()
        page = page.where(_matching_ids(where.text, after=after, max_rows=limit if only_text else MAX_SEARCH_HITS))
    if after is not None:
        page = page.where(tuple_(Ticket.created_at, Ticket.id) < tuple_(*after))
    newest_first = (Ticket.created_at.desc(), Ticket.id.desc())
    page = page.order_by(*newest_first).limit(limit)
    return select(Ticket).where(Ticket.id.in_(page.scalar_subquery())).order_by(*newest_first)


def list_tickets(
    *, session: Session, where: TicketFilter, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Ticket]:
    """Newest first; `after` is the (created_at, id) of the last ticket of the previous page.
    Scoped to the session's tenant (explicitly and by RLS)."""
    stmt = ticket_list_statement(where, tenant_id=scoped_tenant(session), after=after, limit=limit)
    return list(session.execute(stmt).scalars())


def get_message(*, session: Session, ticket: Ticket, message_id: uuid.UUID) -> Message:
    message = session.execute(
        select(Message).where(Message.id == message_id, Message.ticket_id == ticket.id)
    ).scalar_one_or_none()
    if message is None:
        raise NotFound(f"ticket #{ticket.number} has no message {message_id}")
    return message


def get_attachment(*, session: Session, ticket: Ticket, attachment_id: uuid.UUID) -> Attachment:
    attachment = session.execute(
        select(Attachment).join(Message, Message.id == Attachment.message_id)
        .where(Attachment.id == attachment_id, Message.ticket_id == ticket.id)
    ).scalar_one_or_none()
    if attachment is None:
        raise NotFound(f"ticket #{ticket.number} has no attachment {attachment_id}")
    return attachment


def message_attachments(*, session: Session, message_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Attachment]]:
    found: dict[uuid.UUID, list[Attachment]] = {}
    if message_ids:
        for a in session.execute(select(Attachment).where(Attachment.message_id.in_(message_ids))
                                 .order_by(Attachment.created_at, Attachment.id)).scalars():
            found.setdefault(a.message_id, []).append(a)
    return found
