"""The widget's registration: its HTTP mount and the delivery of agent replies on web chat tickets."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from core.registry import Registry
from core.tickets.events import DomainEvent, EventKind
from core.tickets.models import Channel, Direction, Ticket
from inbound.widget.api import mount
from inbound.widget.delivery import DELIVER_JOB, MIRROR_JOB, STATUS_JOB, deliver_reply, mirror_email, status_hint
from inbound.widget.erasure import erase_conversations


def register(registry: Registry) -> None:
    registry.add_http(mount)
    registry.add_cli(lambda app: _add_cli(app, registry))  # threadline widget set
    registry.add_job(DELIVER_JOB, deliver_reply, queue="widget")
    # core/tickets/replies.py routes public replies on Channel.WIDGET tickets to this job.
    registry.add_delivery("widget", DELIVER_JOB)
    # A customer's mail answer to an offline copy shows in the chat; status changes reach the socket.
    registry.add_job(MIRROR_JOB, mirror_email, queue="widget", concerns=customer_message_on_web_chat)
    registry.subscribe(EventKind.MESSAGE_APPENDED, MIRROR_JOB)
    registry.add_job(STATUS_JOB, status_hint, queue="widget", concerns=on_web_chat_ticket)
    registry.subscribe(EventKind.STATUS_CHANGED, STATUS_JOB)
    registry.add_contact_eraser(erase_conversations)  # threadline contacts erase: their web chats too


def on_web_chat_ticket(session: Session, event: DomainEvent) -> bool:
    """Only web chat tickets have a chat to tell (other tickets' rows would each find none)."""
    if event.ticket_id is None:
        return False
    with session.no_autoflush:
        ticket = session.get(Ticket, event.ticket_id)
    return ticket is None or ticket.channel is Channel.WIDGET  # not loaded here: let the job decide


def customer_message_on_web_chat(session: Session, event: DomainEvent) -> bool:
    return event.data.get("direction") == Direction.INBOUND.value and on_web_chat_ticket(session, event)


def _add_cli(app: Any, registry: Registry) -> None:
    from inbound.widget.cli import add_commands  # typer loads only when the CLI is built

    add_commands(app, registry)
