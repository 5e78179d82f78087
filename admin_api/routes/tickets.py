"""Tickets: filtered lists and full-text search, show, create, update, reply, note, merge.

Messages (raw mail, attachments, split) are in admin_api.routes.messages. The ETag of a ticket
covers its fields (TicketPublic), not its thread: a new message does not make a PATCH stale.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from admin_api.auth import Principal, TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.etags import check_if_match, set_etag
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from admin_api.params import TicketNumber
from core.db.session import scoped_tenant
from core.errors import InvalidInput
from core.jobs.outbox import record_events
from core.tenancy.models import Inbox
from core.tenancy.service import is_email_address
from core.tickets import operations, queries, service
from core.tickets.models import ActorKind, Channel, Direction, Priority, TicketStatus
from core.tickets.schemas import Actor, MessagePublic, NewMessage, TicketDetail, TicketPublic
from core.tickets.views import ticket_detail

router = admin_router("tickets")

_TAG = Field(min_length=1, max_length=64)


def actor_of(principal: Principal) -> Actor:
    """The API key is the actor of what it does (timeline and audit log name it)."""
    return Actor(ActorKind.API, f"key:{principal.prefix}", principal.actor)


class TicketCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "subject": "Phone: restore failed", "customer_email": "carol@example.com", "text": "Called at 9:10 ..."}]})

    subject: str = Field(min_length=1, max_length=998)
    customer_email: str = Field(max_length=320)
    customer_name: str | None = Field(default=None, max_length=200)
    text: str = Field(min_length=1, max_length=200_000)
    priority: Priority = Priority.NORMAL
    inbox_id: uuid.UUID | None = None

    @field_validator("customer_email")
    @classmethod
    def _address(cls, value: str) -> str:
        # Deliberately lenient (local and .test domains are real in helpdesks); only shape is checked.
        if not is_email_address(value):
            raise ValueError("is not an email address")
        return value.strip()


class TicketUpdate(BaseModel):
    """Send only what changes; `"assignee_id": null` unassigns; `tags` replaces the tags."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "pending", "priority": "high", "tags": ["billing", "vip"]}]})

    status: TicketStatus | None = None
    priority: Priority | None = None
    assignee_id: uuid.UUID | None = None
    tags: list[Annotated[str, _TAG]] | None = Field(default=None, max_length=50)


class TextBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "Thanks, the restore works again now."}]})

    text: str = Field(min_length=1, max_length=200_000)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("is empty")
        return value


class MergeBody(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"into": 1042}]})

    into: int = Field(ge=1, le=2_147_483_647, description="the number of the ticket that stays")


@router.get("/tickets", response_model=Page[TicketPublic])
def list_tickets(
    request: Request, response: Response, session: SessionDep,
    status: Annotated[list[TicketStatus] | None, Query()] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    inbox_id: Annotated[list[uuid.UUID] | None, Query()] = None,
    assignee_id: Annotated[uuid.UUID | None, Query()] = None,
    unassigned: Annotated[bool, Query(description="only tickets nobody is assigned")] = False,
    contact: Annotated[str | None, Query(max_length=320, description="the customer's email address")] = None,
    tag: Annotated[list[Annotated[str, _TAG]] | None, Query(description="tickets with all these tags")] = None,
    created_since: Annotated[datetime | None, Query(description="inclusive, ISO 8601")] = None,
    created_until: Annotated[datetime | None, Query(description="exclusive")] = None,
    updated_since: Annotated[datetime | None, Query()] = None,
    updated_until: Annotated[datetime | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=queries.MAX_QUERY_CHARS,
                                   description='full text over subjects and messages: words, "a phrase", -not')] = None,
    cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[TicketPublic]:
    """Newest first, with every filter combined (AND); repeat a parameter for OR (`status=new&status=open`)."""
    where = queries.TicketFilter(
        statuses=tuple(status or ()), priorities=tuple(priority or ()), inbox_ids=tuple(inbox_id or ()),
        assignee_id=assignee_id, unassigned=unassigned, contact_email=contact, tags=tuple(tag or ()),
        created_since=created_since, created_until=created_until, updated_since=updated_since,
        updated_until=updated_until, text=q,
    )
    rows = queries.list_tickets(session=session, where=where, after=decode_cursor(cursor, id_type=uuid.UUID),
                                limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=TicketPublic.model_validate)


@router.get("/tickets/{number}", response_model=TicketDetail)
def show_ticket(number: TicketNumber, response: Response, session: SessionDep) -> TicketDetail:
    """The ticket with its messages (thread rule and reason, flags, sender authentication, attachments)
    and its timeline. The ETag is the ticket's own fields (for PATCH)."""
    ticket = service.get_ticket_by_number(session=session, number=number)
    set_etag(response, TicketPublic.model_validate(ticket))
    return ticket_detail(session=session, ticket=ticket)


@router.post("/tickets", response_model=TicketDetail, status_code=201)
def create_ticket(body: TicketCreate, request: Request, response: Response, session: SessionDep,
                  runtime: RuntimeDep) -> TicketDetail:
    """Open a ticket on behalf of a customer (phone call, import, another system)."""
    own = Inbox.tenant_id == scoped_tenant(session)  # explicit, RLS being the second wall
    stmt = select(Inbox).where(own).order_by(Inbox.created_at).limit(1)
    if body.inbox_id:
        stmt = select(Inbox).where(own, Inbox.id == body.inbox_id)
    inbox = session.execute(stmt).scalar_one_or_none()
    if inbox is None:
        raise InvalidInput("no such inbox" if body.inbox_id else "this tenant has no inbox yet")
    contact = service.find_or_create_contact(
        session=session, tenant_id=inbox.tenant_id, email=body.customer_email, name=body.customer_name
    )
    out = service.open_ticket(
        session=session, tenant_id=inbox.tenant_id, inbox_id=inbox.id, subject=body.subject, channel=Channel.API,
        contact_id=contact.id, actor=Actor(ActorKind.API, None, "admin API"), priority=body.priority,
        first_message=NewMessage(
            direction=Direction.INBOUND, source=Channel.API, body_text=body.text, author_contact_id=contact.id,
            author_name=body.customer_name or body.customer_email,
        ),
    )
    record_events(session=session, registry=runtime.registry, events=out.events)
    response.headers["Location"] = f"{request.url.path}/{out.value.number}"
    return ticket_detail(session=session, ticket=out.value)


@router.patch("/tickets/{number}", response_model=TicketPublic)
def update_ticket(number: TicketNumber, body: TicketUpdate, request: Request, response: Response, session: SessionDep,
                  principal: TenantPrincipalDep, runtime: RuntimeDep) -> TicketPublic:
    ticket = service.get_ticket_by_number(session=session, number=number)
    ticket = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
    check_if_match(request, TicketPublic.model_validate(ticket))
    changes = operations.TicketChanges(
        status=body.status, priority=body.priority, tags=body.tags,
        **({"assignee_id": body.assignee_id} if "assignee_id" in body.model_fields_set else {}),
    )
    out = operations.update_ticket(session=session, ticket=ticket, changes=changes, actor=actor_of(principal),
                                   audit=audit_context(request, principal))
    record_events(session=session, registry=runtime.registry, events=out.events)
    session.flush()
    public = TicketPublic.model_validate(ticket)
    set_etag(response, public)
    return public


@router.post("/tickets/{number}/replies", response_model=MessagePublic, status_code=201)
def reply(number: TicketNumber, body: TextBody, request: Request, session: SessionDep, principal: TenantPrincipalDep,
          runtime: RuntimeDep) -> MessagePublic:
    """Mail a public reply to the customer, after the undo window, exactly as a reply from Slack."""
    ticket = service.get_ticket_by_number(session=session, number=number)
    ticket = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
    out = operations.reply(session=session, registry=runtime.registry, ticket=ticket, text=body.text,
                           actor=actor_of(principal), audit=audit_context(request, principal),
                           undo_seconds=runtime.settings.undo_seconds)
    record_events(session=session, registry=runtime.registry, events=out.events)
    return MessagePublic.model_validate(out.value)


@router.post("/tickets/{number}/notes", response_model=MessagePublic, status_code=201)
def note(number: TicketNumber, body: TextBody, request: Request, session: SessionDep, principal: TenantPrincipalDep,
         runtime: RuntimeDep) -> MessagePublic:
    """An internal note: shown to agents (timeline, chat thread), never mailed."""
    ticket = service.get_ticket_by_number(session=session, number=number)
    out = operations.add_note(session=session, ticket=ticket, text=body.text, actor=actor_of(principal),
                              audit=audit_context(request, principal))
    record_events(session=session, registry=runtime.registry, events=out.events)
    return MessagePublic.model_validate(out.value)


@router.post("/tickets/{number}/merge", response_model=TicketDetail)
def merge(number: TicketNumber, body: MergeBody, request: Request, session: SessionDep, principal: TenantPrincipalDep,
          runtime: RuntimeDep) -> TicketDetail:
    """Merge this ticket into `into`: its messages move there, it is closed and linked to it; both
    timelines and chat threads say so. Answers the ticket that stays."""
    source = service.get_ticket_by_number(session=session, number=number)
    target = service.get_ticket_by_number(session=session, number=body.into)
    out = operations.merge_tickets(session=session, source=source, target=target, actor=actor_of(principal),
                                   audit=audit_context(request, principal))
    record_events(session=session, registry=runtime.registry, events=out.events)
    session.flush()
    return ticket_detail(session=session, ticket=out.value)
