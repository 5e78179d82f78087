"""`adaptiveCard/action` invokes (Action.Execute): card buttons, Undo / Make internal, drafts.

Teams waits for the answer, so each handler does its one service call and returns the card that
replaces the clicked one, read back in the same request.
"""

from __future__ import annotations

import uuid
from typing import Any

from bots.surface import actions, draft_actions, held_actions, render
from bots.surface.access import NotAllowed
from bots.surface.deps import SurfaceUser
from bots.teams import cards
from bots.teams.access import allowed_user
from bots.teams.activity import Incoming
from bots.teams.ids import SURFACE, Input, Verb
from bots.teams.runtime import TeamsDeps
from core.db.session import tenant_scope
from core.errors import InvalidInput
from core.tickets.models import Draft, Message, Priority, Ticket, TicketStatus


def _tenant(deps: TeamsDeps, incoming: Incoming) -> uuid.UUID:
    tenant = actions.tenant_for_channel(deps.surface, surface=SURFACE, channel=incoming.channel_id)
    if tenant is None:
        raise NotAllowed("this channel is not bound to a Threadline inbox.")
    return tenant


def _id(data: dict[str, Any], key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(data.get(key)))
    except ValueError:
        raise InvalidInput("this card is out of date; use the latest one in the thread") from None


def ticket_card(deps: TeamsDeps, tenant_id: uuid.UUID, ticket_id: uuid.UUID) -> dict[str, Any]:
    with tenant_scope(deps.surface.factory, tenant_id) as session:
        return cards.invoke_card(cards.ticket_card(render.ticket_card(session, session.get_one(Ticket, ticket_id))))


def notice_card(deps: TeamsDeps, tenant_id: uuid.UUID, message_id: uuid.UUID) -> dict[str, Any]:
    with tenant_scope(deps.surface.factory, tenant_id) as session:
        message = session.get_one(Message, message_id)
        ticket = session.get_one(Ticket, message.ticket_id)
        notice = render.reply_notice(session, ticket, message, deps.surface.settings.undo_seconds)
    return cards.invoke_card(cards.notice_card(notice))


def draft_card(deps: TeamsDeps, tenant_id: uuid.UUID, draft_id: uuid.UUID) -> dict[str, Any]:
    with tenant_scope(deps.surface.factory, tenant_id) as session:
        card = render.draft_card(session, session.get_one(Draft, draft_id))
    return cards.invoke_card(cards.draft_card(card))


def _ticket_verb(deps: TeamsDeps, verb: Verb, data: dict[str, Any], tenant: uuid.UUID,
                 user: SurfaceUser) -> dict[str, Any]:
    ref = actions.ticket_ref(deps.surface, tenant_id=tenant, ticket_id=_id(data, "ticket_id"))
    if verb is Verb.ASSIGN_ME:
        actions.assign_to(deps.surface, ref=ref, user=user, assignee=None)
    elif verb is Verb.RESOLVE:
        actions.set_status(deps.surface, ref=ref, user=user, status=TicketStatus.RESOLVED)
    elif verb is Verb.REOPEN:
        actions.set_status(deps.surface, ref=ref, user=user, status=TicketStatus.OPEN)
    elif verb is Verb.PRIORITY:
        try:
            priority = Priority(str(data.get(Input.PRIORITY, "")))
        except ValueError:
            raise InvalidInput("pick a priority: low, normal, high or urgent") from None
        actions.set_priority(deps.surface, ref=ref, user=user, priority=priority)
    else:
        actions.reply_to_customer(deps.surface, ref=ref, user=user, text=str(data.get(Input.REPLY) or ""))
    return ticket_card(deps, tenant, ref.ticket_id)


def on_card_action(incoming: Incoming, deps: TeamsDeps) -> dict[str, Any]:
    action = incoming.value.get("action") or {}
    try:
        verb = Verb(str(action.get("verb")))
    except ValueError:
        raise InvalidInput("this button is not Threadline's (or is from an older version)") from None
    raw = action.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    tenant = _tenant(deps, incoming)
    user = allowed_user(deps, tenant_id=tenant, incoming=incoming)
    if verb in (Verb.ASSIGN_ME, Verb.RESOLVE, Verb.REOPEN, Verb.PRIORITY, Verb.REPLY):
        return _ticket_verb(deps, verb, data, tenant, user)
    if verb in (Verb.UNDO, Verb.MAKE_INTERNAL):
        message_id = _id(data, "message_id")
        if verb is Verb.UNDO:
            actions.undo_reply(deps.surface, tenant_id=tenant, message_id=message_id, user=user)
        else:
            actions.make_internal(deps.surface, tenant_id=tenant, message_id=message_id, user=user)
        return notice_card(deps, tenant, message_id)
    if verb is Verb.RELEASE_HELD:
        item = held_actions.release_held(deps.surface, tenant_id=tenant, raw_id=_id(data, "raw_id"), user=user)
        return cards.invoke_card(cards.held_item_card(item))
    draft_id = _id(data, "draft_id")
    if verb is Verb.SEND_DRAFT:
        draft_actions.send_draft(deps.surface, tenant_id=tenant, draft_id=draft_id, user=user)
    elif verb is Verb.EDIT_DRAFT:
        edited = str(data.get(Input.DRAFT) or "").strip()
        if not edited:
            raise InvalidInput("the answer is empty")
        draft_actions.send_draft(deps.surface, tenant_id=tenant, draft_id=draft_id, user=user, edited_text=edited)
    elif verb is Verb.DISCARD_DRAFT:
        draft_actions.discard_draft(deps.surface, tenant_id=tenant, draft_id=draft_id, user=user)
    else:
        _text, ticket_id = draft_actions.draft_text(deps.surface, tenant_id=tenant, draft_id=draft_id)
        draft_actions.request_draft(deps.surface, ref=actions.ticket_ref(deps.surface, tenant_id=tenant,
                                                                         ticket_id=ticket_id), user=user)
    return draft_card(deps, tenant, draft_id)
