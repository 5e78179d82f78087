"""Tickets for admins: list and show (read-only here; agents act from Slack)."""

from __future__ import annotations

from fastapi import APIRouter, Query

from admin_api.deps import SessionDep
from core.tickets import service
from core.tickets.models import TicketStatus
from core.tickets.schemas import TicketDetail, TicketPublic
from core.tickets.views import ticket_detail

router = APIRouter(tags=["tickets"])


@router.get("/tickets", response_model=list[TicketPublic])
def list_tickets(
    session: SessionDep,
    status: list[TicketStatus] | None = Query(default=None),
    limit: int = Query(default=50, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
) -> list[TicketPublic]:
    rows = service.list_tickets(session=session, statuses=status, limit=limit, offset=offset)
    return [TicketPublic.model_validate(t) for t in rows]


@router.get("/tickets/{number}", response_model=TicketDetail)
def show_ticket(number: int, session: SessionDep) -> TicketDetail:
    return ticket_detail(session=session, ticket=service.get_ticket_by_number(session=session, number=number))
