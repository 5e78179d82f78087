"""Draft cards in the ticket thread: one click sends, Edit sends the edit, Discard sends nothing."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from core.db.session import system_scope, tenant_scope
from core.jobs.outbox import record_events
from core.tickets import drafts, service
from core.tickets.models import Direction, Draft, DraftState, Message, Ticket
from tests.bots.slack.conftest import AGENT, CHANNEL, SlackWorld, wait_until
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import block_action, interaction_body, view_submission

CITATIONS = [{"title": "Removing a stale lock", "source": "075_scripting.rst", "heading": "Locks"}]


def _propose(world: SlackWorld, text: str = "Run `restic unlock`, then retry the backup.") -> uuid.UUID:
    deliver(world.runtime, mail(message_id="<d1@customer.test>", subject="Repository locked"))
    drain_jobs(world.runtime)
    with system_scope(world.runtime.factory) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        tenant_id, ticket_id = ticket.tenant_id, ticket.id
    with tenant_scope(world.runtime.factory, tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket_id)
        out = drafts.propose(session=session, ticket=t, for_message_id=None, text=text, citations=CITATIONS,
                             confidence=0.82, answered=True)
        record_events(session=session, registry=world.runtime.registry, events=out.events)
        draft_id = out.value.id
    drain_jobs(world.runtime)
    return draft_id


def _draft(world: SlackWorld, draft_id: uuid.UUID) -> Draft:
    with system_scope(world.runtime.factory) as session:
        return session.get_one(Draft, draft_id)


def _card(world: SlackWorld) -> dict:  # type: ignore[type-arg]
    return [m for m in world.fake.messages(channel=CHANNEL, thread_ts=world.card_ts()) if "confidence" in json.dumps(m.get("blocks"))][-1]


def _click(world: SlackWorld, action: str, draft_id: uuid.UUID) -> None:
    card = _card(world)
    world.post_form("/slack/interactions", interaction_body(
        block_action(action, str(draft_id), AGENT, CHANNEL, card["ts"], thread_ts=world.card_ts())))


def _outbound(world: SlackWorld) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction == Direction.OUTBOUND)).scalars())


def test_a_proposed_draft_shows_text_sources_confidence_and_buttons(world: SlackWorld) -> None:
    _propose(world)
    card = _card(world)
    dumped = json.dumps(card["blocks"])
    assert "restic unlock" in dumped and "Removing a stale lock" in dumped and "82%" in dumped
    assert [e["action_id"] for e in card["blocks"][-1]["elements"]] == ["tl_send_draft", "tl_edit_draft",
                                                                         "tl_discard_draft"]


def test_send_is_one_click_and_one_mail_with_the_draft_text(world: SlackWorld) -> None:
    draft_id = _propose(world)
    _click(world, "tl_send_draft", draft_id)
    wait_until(lambda: _draft(world, draft_id).state is DraftState.SENT)
    _click(world, "tl_send_draft", draft_id)  # a double click sends nothing more
    drain_jobs(world.runtime, include_delayed=True)
    (sent,) = world.sink.wait_for(1)
    drain_jobs(world.runtime, include_delayed=True)
    assert "Run `restic unlock`, then retry the backup." in sent.message.get_body(("plain",)).get_content()
    assert len(world.sink.mails) == 1 and len(_outbound(world)) == 1
    assert "Sent by Ann Agent" in json.dumps(_card(world)["blocks"])


def test_edit_sends_the_edited_text_and_records_it(world: SlackWorld) -> None:
    draft_id = _propose(world)
    edited = "Hi Bob, please run `restic unlock` and try again."
    payload = view_submission("tl_edit_draft_modal", {"reply": {"text": {"type": "plain_text_input", "value": edited}}},
                              AGENT, private_metadata=json.dumps({"draft_id": str(draft_id),
                                                                  "tenant_id": str(_draft(world, draft_id).tenant_id)}))
    world.post_form("/slack/interactions", interaction_body(payload))
    wait_until(lambda: _draft(world, draft_id).state is DraftState.EDITED)
    drain_jobs(world.runtime, include_delayed=True)
    (sent,) = world.sink.wait_for(1)
    assert edited in sent.message.get_body(("plain",)).get_content()
    assert _draft(world, draft_id).final_text == edited


def test_discard_sends_nothing_and_says_who_discarded_it(world: SlackWorld) -> None:
    draft_id = _propose(world)
    _click(world, "tl_discard_draft", draft_id)
    wait_until(lambda: _draft(world, draft_id).state is DraftState.DISCARDED)
    drain_jobs(world.runtime, include_delayed=True)
    assert (world.sink.mails, _outbound(world)) == ([], [])
    assert "Discarded by Ann Agent" in json.dumps(_card(world)["blocks"])


def test_a_newer_proposal_makes_the_pending_draft_stale_and_its_send_refused(world: SlackWorld) -> None:
    first = _propose(world)
    with system_scope(world.runtime.factory) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    with tenant_scope(world.runtime.factory, ticket.tenant_id) as session:
        out = drafts.supersede_pending(session=session, ticket=service.get_ticket(session=session, ticket_id=ticket.id))
        record_events(session=session, registry=world.runtime.registry, events=out)
    drain_jobs(world.runtime)
    assert _draft(world, first).state is DraftState.STALE
    blocks = _card(world)["blocks"]
    assert [e["action_id"] for e in blocks[-1]["elements"]] == ["tl_regenerate_draft"]
    _click(world, "tl_send_draft", first)
    wait_until(lambda: world.fake.calls_to("chat.postEphemeral"))
    assert "stale" in world.fake.calls_to("chat.postEphemeral")[-1].args["text"]
    drain_jobs(world.runtime, include_delayed=True)
    assert world.sink.mails == []
