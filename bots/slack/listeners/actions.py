"""Block actions: card buttons, Undo / Make internal, view original, reply modal."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bots.slack import blocks
from bots.slack.runtime import SlackDeps
from bots.surface import actions
from core.db.session import tenant_scope
from core.tickets.models import Contact, Message, Priority, Ticket, TicketStatus


def _value(body: dict[str, Any]) -> str:
    action = body["actions"][0]
    return str(action.get("value") or action.get("selected_option", {}).get("value", ""))


def _ref(body: dict[str, Any], deps: SlackDeps, ticket_id: str) -> actions.TicketRef:
    tenant = actions.tenant_for_channel(deps.surface, surface="slack", channel=body.get("channel", {}).get("id"))
    return actions.ticket_ref(deps.surface, tenant_id=tenant, ticket_id=uuid.UUID(ticket_id))


def assign_me(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.assign_to(deps.surface, ref=ref, user=deps.users.get(body["user"]["id"]), assignee=None)


def priority(body: dict[str, Any], deps: SlackDeps) -> None:
    ticket_id, value = _value(body).split("|", 1)
    ref = _ref(body, deps, ticket_id)
    actions.set_priority(deps.surface, ref=ref, user=deps.users.get(body["user"]["id"]), priority=Priority(value))


def resolve(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.set_status(deps.surface, ref=ref, user=deps.users.get(body["user"]["id"]), status=TicketStatus.RESOLVED)


def reopen(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.set_status(deps.surface, ref=ref, user=deps.users.get(body["user"]["id"]), status=TicketStatus.OPEN)


def _message_tenant(body: dict[str, Any], deps: SlackDeps) -> uuid.UUID:
    return actions.tenant_for_channel(deps.surface, surface="slack", channel=body.get("channel", {}).get("id"))


def undo(body: dict[str, Any], deps: SlackDeps) -> None:
    actions.undo_reply(deps.surface, tenant_id=_message_tenant(body, deps), message_id=uuid.UUID(_value(body)),
                       user=deps.users.get(body["user"]["id"]))


def make_internal(body: dict[str, Any], deps: SlackDeps) -> None:
    actions.make_internal(deps.surface, tenant_id=_message_tenant(body, deps), message_id=uuid.UUID(_value(body)),
                          user=deps.users.get(body["user"]["id"]))


def view_original(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _message_tenant(body, deps)
    with tenant_scope(deps.surface.factory, tenant) as session:
        message = session.get(Message, uuid.UUID(_value(body)))
        text = message.body_text if message else "(not found)"
        title = f"From {message.author_name}" if message and message.author_name else "Original message"
    deps.client.views_open(trigger_id=body["trigger_id"], view=blocks.original_modal(title=title, text=text))


def open_reply_modal(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    with tenant_scope(deps.surface.factory, ref.tenant_id) as session:
        ticket = session.get_one(Ticket, ref.ticket_id)
        contact = session.get(Contact, ticket.contact_id) if ticket.contact_id else None
        recipient = contact.email if contact else "the customer"
    view = blocks.reply_modal(ticket_id=str(ref.ticket_id), number=ref.number, recipient=recipient)
    # The submission carries no channel: the tenant rides along (several tenants may have channels).
    view.private_metadata = json.dumps({"ticket_id": str(ref.ticket_id), "tenant_id": str(ref.tenant_id)})
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)
