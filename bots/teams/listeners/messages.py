"""Message activities: an agent writes, edits or deletes a reply in a ticket's channel thread."""

from __future__ import annotations

import logging
import time

from bots.surface import actions
from bots.surface.deps import SurfaceUser
from bots.surface.intents import parse_command
from bots.teams import cards
from bots.teams.access import allowed_assignee, allowed_user
from bots.teams.activity import Incoming, thread_root
from bots.teams.ids import SURFACE, VOCABULARY
from bots.teams.inbound import original_pending
from bots.teams.runtime import TeamsDeps
from core.errors import TemporaryFailure

log = logging.getLogger(__name__)


def _ticket(deps: TeamsDeps, incoming: Incoming, *, wait: bool) -> actions.TicketRef | None:
    root = thread_root(incoming.conversation_id)
    if not incoming.channel_id or root is None or root == incoming.id:
        return None  # not a reply inside a channel thread (a new post starts its own)
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
        if incoming.mentions_bot:
            _command(incoming, deps)
        return
    user = allowed_user(deps, tenant_id=ref.tenant_id, incoming=incoming)
    # channel+activity id dedupes copies that arrive under new delivery ids, as Slack's channel+ts.
    actions.handle_thread_message(deps.surface, ref=ref, user=user, channel=incoming.conversation_id,
                                  ts=incoming.id, text=incoming.text)


def _command(incoming: Incoming, deps: TeamsDeps) -> None:
    """`@Threadline mine` (or open, assign 123 me, status 123 resolved, ...) in a bound channel:
    the same commands as Slack's /threadline, answered in the message's thread."""
    tenant = actions.tenant_for_channel(deps.surface, surface=SURFACE, channel=incoming.channel_id)
    if tenant is None:
        return  # a channel no inbox is bound to: not ours to answer
    user = allowed_user(deps, tenant_id=tenant, incoming=incoming)

    def mentioned(word: str) -> str | None:  # `@N`, as activity.command_text wrote a mention
        index = word[1:] if word.startswith("@") else ""
        return index if index.isdigit() and int(index) < len(incoming.mentioned) else None

    def assignee(index: str) -> SurfaceUser:
        return allowed_assignee(deps, tenant_id=tenant, incoming=incoming, user=incoming.mentioned[int(index)])

    answer = actions.run_command(deps.surface, tenant_id=tenant, user=user, vocabulary=VOCABULARY,
                                 command=parse_command(incoming.command_text, vocabulary=VOCABULARY,
                                                       mention=mentioned), resolve_user=assignee)
    deps.connector.send(incoming.service_url, conversation_id=incoming.conversation_id,
                        activity=cards.text_message(answer))


def on_update(incoming: Incoming, deps: TeamsDeps) -> None:
    """messageUpdate: an edit inside the undo window changes what is sent."""
    ref = _ticket(deps, incoming, wait=False)
    if ref is None or incoming.from_bot:
        return
    user = allowed_user(deps, tenant_id=ref.tenant_id, incoming=incoming)
    if not actions.agent_edited(deps.surface, ref=ref, user=user, channel=incoming.conversation_id, ts=incoming.id,
                                text=incoming.text):
        _after_the_original(deps, ref, incoming)


def on_delete(incoming: Incoming, deps: TeamsDeps) -> None:
    """messageDelete: deleting the message inside the undo window cancels the reply."""
    ref = _ticket(deps, incoming, wait=False)
    if ref is None or incoming.from_bot:
        return
    user = allowed_user(deps, tenant_id=ref.tenant_id, incoming=incoming)
    if not actions.agent_deleted(deps.surface, ref=ref, user=user, channel=incoming.conversation_id, ts=incoming.id):
        _after_the_original(deps, ref, incoming)


def _after_the_original(deps: TeamsDeps, ref: actions.TicketRef, incoming: Incoming) -> None:
    """An edit or delete of a message whose own job has not run yet waits for it (a retry)."""
    if original_pending(deps, tenant_id=ref.tenant_id, incoming=incoming):
        raise TemporaryFailure(f"{incoming.type} waits for its message to be handled first")
