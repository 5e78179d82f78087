"""`adaptiveCard/action` invokes (Action.Execute): card buttons, Undo / Make internal, drafts,
held mail, Retry; and the `task/fetch` dialog that shows a customer message's full original.

An action is done once by its job (`act`, in bots/teams/app.py's `teams.invoke`); Teams waits
for the answer, which is the card that replaces the clicked one, read back afterwards (`answer`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from bots.surface import actions, draft_actions, held_actions, render
from bots.surface.access import Need, NotAllowed
from bots.surface.deps import SurfaceUser
from bots.surface.held_views import held_item
from bots.teams import cards, inbound
from bots.teams.access import allowed_user
from bots.teams.activity import Incoming
from bots.teams.ids import SURFACE, Input, Verb
from bots.teams.runtime import TeamsDeps
from core.db.session import tenant_scope
from core.errors import InvalidInput, UserError
from core.jobs.models import OutboxRow
from core.tickets import held
from core.tickets.models import Draft, Message, Priority, RawInbound, Ticket, TicketStatus

_TICKET_VERBS = (Verb.ASSIGN_ME, Verb.RESOLVE, Verb.REOPEN, Verb.PRIORITY, Verb.REPLY)
_DRAFT_VERBS = (Verb.SEND_DRAFT, Verb.EDIT_DRAFT, Verb.DISCARD_DRAFT, Verb.REGENERATE_DRAFT)


def tenant_of(deps: TeamsDeps, incoming: Incoming) -> uuid.UUID:
    tenant = actions.tenant_for_channel(deps.surface, surface=SURFACE, channel=incoming.channel_id)
    if tenant is None:
        raise NotAllowed("this channel is not bound to a Threadline inbox.")
    return tenant


def parse_action(incoming: Incoming) -> tuple[Verb, dict[str, Any]]:
    action = incoming.value.get("action") or {}
    try:
        verb = Verb(str(action.get("verb")))
    except ValueError:
        raise InvalidInput("this button is not Threadline's (or is from an older version)") from None
    raw = action.get("data")
    return verb, raw if isinstance(raw, dict) else {}


def _id(data: dict[str, Any], key: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(data.get(key)))
    except ValueError:
        raise InvalidInput("this card is out of date; use the latest one in the thread") from None


def _ticket_verb(deps: TeamsDeps, verb: Verb, data: dict[str, Any], tenant: uuid.UUID, user: SurfaceUser) -> None:
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


def _draft_verb(deps: TeamsDeps, verb: Verb, data: dict[str, Any], tenant: uuid.UUID, user: SurfaceUser) -> None:
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


def _retry(deps: TeamsDeps, data: dict[str, Any], tenant: uuid.UUID, incoming: Incoming) -> None:
    """Retry under a failed message: its stored activity is handled again, if it is the clicker's."""
    try:
        job_id = int(str(data.get("job")))
    except ValueError:
        raise InvalidInput("this card is out of date; use the latest one in the thread") from None
    with tenant_scope(deps.surface.factory, tenant) as session:
        row = session.execute(select(OutboxRow.job, OutboxRow.payload).where(
            OutboxRow.tenant_id == tenant, OutboxRow.id == job_id)).first()
    activity = (row.payload or {}).get("activity") if row is not None and row.job == inbound.ACTIVITY_JOB else None
    sender = ((activity or {}).get("from") or {}).get("aadObjectId") if isinstance(activity, dict) else None
    if not isinstance(activity, dict) or not sender or sender != incoming.sender.aad_object_id:
        raise UserError("that message is gone (or is not yours), so there is nothing to retry")
    inbound.resend(deps, tenant_id=tenant, activity=activity)


def act(incoming: Incoming, deps: TeamsDeps, *, job_tenant: uuid.UUID) -> None:
    """Do what the button says (once: this runs in the action's job)."""
    verb, data = parse_action(incoming)
    tenant = tenant_of(deps, incoming)
    if tenant != job_tenant:
        raise NotAllowed("this channel is bound to another inbox now.")
    user = allowed_user(deps, tenant_id=tenant, incoming=incoming)
    if verb in _TICKET_VERBS:
        _ticket_verb(deps, verb, data, tenant, user)
    elif verb is Verb.UNDO:
        actions.undo_reply(deps.surface, tenant_id=tenant, message_id=_id(data, "message_id"), user=user)
    elif verb is Verb.MAKE_INTERNAL:
        actions.make_internal(deps.surface, tenant_id=tenant, message_id=_id(data, "message_id"), user=user)
    elif verb is Verb.RELEASE_HELD:
        held_actions.release_held(deps.surface, tenant_id=tenant, raw_id=_id(data, "raw_id"), user=user)
    elif verb is Verb.RETRY_REPLY:
        _retry(deps, data, tenant, incoming)
    else:
        _draft_verb(deps, verb, data, tenant, user)


def answer(incoming: Incoming, deps: TeamsDeps, tenant: uuid.UUID) -> dict[str, Any]:
    """The card that replaces the clicked one, as things are now (read only)."""
    verb, data = parse_action(incoming)
    if verb is Verb.RETRY_REPLY:
        return cards.invoke_card(cards.failure_card("🔁 Retrying your message…"))
    with tenant_scope(deps.surface.factory, tenant) as session:
        if verb in _TICKET_VERBS:
            ticket = session.get_one(Ticket, _id(data, "ticket_id"))
            return cards.invoke_card(cards.ticket_card(render.ticket_card(session, ticket)))
        if verb in (Verb.UNDO, Verb.MAKE_INTERNAL):
            message = session.get_one(Message, _id(data, "message_id"))
            ticket = session.get_one(Ticket, message.ticket_id)
            notice = render.reply_notice(session, ticket, message, deps.surface.settings.undo_seconds)
            return cards.invoke_card(cards.notice_card(notice))
        if verb is Verb.RELEASE_HELD:
            raw_id = _id(data, "raw_id")
            raw = session.execute(select(RawInbound).where(RawInbound.tenant_id == tenant,
                                                            RawInbound.id == raw_id)).scalar_one()
            item = held_item(held.get_held(session=session, tenant_id=tenant, raw_id=raw_id),
                             released_by=raw.released_by)
            return cards.invoke_card(cards.held_item_card(item))
        card = render.draft_card(session, session.get_one(Draft, _id(data, "draft_id")))
    return cards.invoke_card(cards.draft_card(card))


def view_original(incoming: Incoming, deps: TeamsDeps) -> dict[str, Any]:
    """`task/fetch` from "View the full original": a dialog with the whole message as received."""
    raw = incoming.value.get("data")
    data: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if data.get("verb") != Verb.VIEW_ORIGINAL.value:
        raise InvalidInput("this button is not Threadline's (or is from an older version)")
    tenant = tenant_of(deps, incoming)
    user = allowed_user(deps, tenant_id=tenant, incoming=incoming)
    actions.require(deps.surface, tenant_id=tenant, user=user, need=Need.VIEW)
    with tenant_scope(deps.surface.factory, tenant) as session:
        message = session.execute(select(Message).where(Message.tenant_id == tenant,
                                                        Message.id == _id(data, "message_id"))).scalar_one_or_none()
        if message is None:
            raise InvalidInput("that message is gone")
        title = f"From {message.author_name}" if message.author_name else "Original message"
        return cards.original_dialog(title=title, text=message.body_text or "")
