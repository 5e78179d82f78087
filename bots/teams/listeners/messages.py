"""Message activities: an agent writes, edits or deletes a reply in a ticket's channel thread."""

from __future__ import annotations

import logging
import time

from bots.surface import actions
from bots.teams.access import allowed_user
from bots.teams.activity import Incoming, thread_root
from bots.teams.ids import SURFACE
from bots.teams.runtime import TeamsDeps

log = logging.getLogger(__name__)


def _ticket(deps: TeamsDeps, incoming: Incoming, *, wait: bool) -> actions.TicketRef | None:
    if not incoming.channel_id or thread_root(incoming.conversation_id) is None:
        return None  # not a reply inside a channel thread
    ref = actions.ticket_for_thread(deps.surface, surface=SURFACE, channel=incoming.channel_id,
                                    thread_ref=incoming.conversation_id)
    for _ in range(6 if wait else 0):
        if ref is not None:
            break
        # The card's anchor commits right after Teams answered us: an agent can win that race.
        time.sleep(0.25)
        ref = actions.ticket_for_thread(deps.surface, surface=SURFACE, channel=incoming.channel_id,
                                        thread_ref=incoming.conversation_id)
    return ref


def on_message(incoming: Incoming, deps: TeamsDeps) -> None:
    if incoming.from_bot:
        return  # our own posts and other bots' (loops, integrations)
    ref = _ticket(deps, incoming, wait=True)
    if ref is None:
        return
    user = allowed_user(deps, tenant_id=ref.tenant_id, incoming=incoming)
    # channel+activity id dedupes copies that arrive under new delivery ids, as Slack's channel+ts.
    actions.handle_thread_message(deps.surface, ref=ref, user=user, channel=incoming.conversation_id,
                                  ts=incoming.id, text=incoming.text)


def on_update(incoming: Incoming, deps: TeamsDeps) -> None:
    """messageUpdate: an edit inside the undo window changes what is sent."""
    ref = _ticket(deps, incoming, wait=False)
    if ref is None or incoming.from_bot:
        return
    user = allowed_user(deps, tenant_id=ref.tenant_id, incoming=incoming)
    actions.agent_edited(deps.surface, ref=ref, user=user, channel=incoming.conversation_id, ts=incoming.id,
                         text=incoming.text)


def on_delete(incoming: Incoming, deps: TeamsDeps) -> None:
    """messageDelete: deleting the message inside the undo window cancels the reply."""
    ref = _ticket(deps, incoming, wait=False)
    if ref is None or incoming.from_bot:
        return
    user = allowed_user(deps, tenant_id=ref.tenant_id, incoming=incoming)
    actions.agent_deleted(deps.surface, ref=ref, user=user, channel=incoming.conversation_id, ts=incoming.id)
