"""Block actions: card buttons, Undo / Make internal, view original, reply modal."""

from __future__ import annotations

import json
import uuid
from typing import Any

from bots.slack import blocks
from bots.slack.access import allowed_user, request_tenant
from bots.slack.runtime import SlackDeps
from bots.surface import actions, render
from bots.surface.access import Need
from bots.surface.deps import SurfaceUser
from core.db.session import tenant_scope
from core.tickets.models import Message, Priority, Ticket, TicketStatus


def _value(body: dict[str, Any]) -> str:
    action = body["actions"][0]
    return str(action.get("value") or action.get("selected_option", {}).get("value", ""))


def _channel(body: dict[str, Any]) -> str | None:
    return (body.get("channel") or {}).get("id")


def _ref(body: dict[str, Any], deps: SlackDeps, ticket_id: str) -> actions.TicketRef:
    return actions.ticket_ref(deps.surface, tenant_id=_message_tenant(body, deps), ticket_id=uuid.UUID(ticket_id))


def _user(body: dict[str, Any], deps: SlackDeps, tenant_id: uuid.UUID) -> SurfaceUser:
    return allowed_user(deps, tenant_id=tenant_id, channel=_channel(body), user_id=body["user"]["id"])


def assign_me(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.assign_to(deps.surface, ref=ref, user=_user(body, deps, ref.tenant_id), assignee=None)


def priority(body: dict[str, Any], deps: SlackDeps) -> None:
    ticket_id, value = _value(body).split("|", 1)
    ref = _ref(body, deps, ticket_id)
    actions.set_priority(deps.surface, ref=ref, user=_user(body, deps, ref.tenant_id), priority=Priority(value))


def resolve(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.set_status(deps.surface, ref=ref, user=_user(body, deps, ref.tenant_id), status=TicketStatus.RESOLVED)


def reopen(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.set_status(deps.surface, ref=ref, user=_user(body, deps, ref.tenant_id), status=TicketStatus.OPEN)


def _message_tenant(body: dict[str, Any], deps: SlackDeps) -> uuid.UUID:
    return request_tenant(deps, _channel(body))


def undo(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _message_tenant(body, deps)
    actions.undo_reply(deps.surface, tenant_id=tenant, message_id=uuid.UUID(_value(body)),
                       user=_user(body, deps, tenant))


def make_internal(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _message_tenant(body, deps)
    actions.make_internal(deps.surface, tenant_id=tenant, message_id=uuid.UUID(_value(body)),
                          user=_user(body, deps, tenant))


def view_original(body: dict[str, Any], deps: SlackDeps) -> None:
    tenant = _message_tenant(body, deps)
    actions.require(deps.surface, tenant_id=tenant, user=_user(body, deps, tenant), need=Need.VIEW)
    with tenant_scope(deps.surface.factory, tenant) as session:
        message = session.get(Message, uuid.UUID(_value(body)))
        text = message.body_text if message else "(not found)"
        title = f"From {message.author_name}" if message and message.author_name else "Original message"
    deps.client.views_open(trigger_id=body["trigger_id"], view=blocks.original_modal(title=title, text=text))


def open_reply_modal(body: dict[str, Any], deps: SlackDeps) -> None:
    ref = _ref(body, deps, _value(body))
    actions.require(deps.surface, tenant_id=ref.tenant_id, user=_user(body, deps, ref.tenant_id), need=Need.ACT)
    with tenant_scope(deps.surface.factory, ref.tenant_id) as session:
        recipient = render.recipient(session, session.get_one(Ticket, ref.ticket_id))
    view = blocks.reply_modal(ticket_id=str(ref.ticket_id), number=ref.number, recipient=recipient)
    # The submission carries no channel: the tenant rides along (several tenants may have channels).
    view.private_metadata = json.dumps({"ticket_id": str(ref.ticket_id), "tenant_id": str(ref.tenant_id),
                                        "channel": _channel(body)})
    deps.client.views_open(trigger_id=body["trigger_id"], view=view)
