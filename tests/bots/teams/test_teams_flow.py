"""Email in → card and thread in (fake) Teams → agent reply activity → exactly one mail out."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.db.session import system_scope
from core.tenancy.models import Agent, Inbox, ReplyMode
from core.tickets.models import DeliveryState, Direction, Message, SurfaceAnchor, TicketEvent
from tests.bots.teams.conftest import AGENT_AAD, CHANNEL, TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs


def _messages(world: TeamsWorld, direction: Direction | None = None) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        stmt = select(Message).order_by(Message.created_at)
        if direction is not None:
            stmt = stmt.where(Message.direction == direction)
        return list(session.execute(stmt).scalars())


def _customer_writes(world: TeamsWorld, **kw: str) -> str:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id="<cust1@customer.test>", **kw))
    drain_jobs(world.runtime)
    return world.thread_id()


def _texts(world: TeamsWorld, thread: str) -> list[str]:
    return [json.dumps(world.fake.card_of(a)) for a in world.fake.thread(thread)]


def test_new_ticket_starts_a_thread_with_the_card_and_the_customer_message(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world, subject="Backup fails", body="restic says the repository is locked")
    card, post = (teams_world.fake.card_of(a) for a in teams_world.fake.thread(thread)[:2])
    assert "#1 Backup fails" in json.dumps(card) and card["actions"][0]["verb"] == "tl_assign_me"
    assert "repository is locked" in json.dumps(post)
    with system_scope(teams_world.runtime.factory) as session:
        anchor = session.execute(select(SurfaceAnchor)).scalar_one()
    assert (anchor.surface, anchor.channel, anchor.thread_ref, anchor.service_url) == (
        "teams", CHANNEL, thread, teams_world.fake.service_url)


def test_agent_thread_reply_sends_exactly_one_threaded_mail(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world)
    assert teams_world.agent_says("Please run `restic unlock`.", thread=thread, mention=True) == 200
    drain_jobs(teams_world.runtime)
    (mail_out,) = teams_world.sink.wait_for(1)
    msg = mail_out.message
    assert msg["In-Reply-To"] == "<cust1@customer.test>"
    assert "[TL-1]" in msg["Subject"]
    body = msg.get_body(("plain",)).get_content()
    assert "restic unlock" in body and "Threadline" not in body  # the bot's @mention is stripped


def test_the_same_activity_delivered_three_times_sends_one_mail(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world)
    for _ in range(3):
        assert teams_world.agent_says("Try again now.", thread=thread, activity_id="1800000000999") == 200
    drain_jobs(teams_world.runtime)
    teams_world.sink.wait_for(1)
    drain_jobs(teams_world.runtime)
    assert (len(teams_world.sink.mails), len(_messages(teams_world, Direction.OUTBOUND))) == (1, 1)


@pytest.mark.parametrize("prefix", ["note: ", "// "])
def test_note_prefixes_make_an_internal_note_and_no_mail(teams_world: TeamsWorld, prefix: str) -> None:
    thread = _customer_writes(teams_world)
    teams_world.agent_says(f"{prefix}customer is on v0.9", thread=thread)
    drain_jobs(teams_world.runtime, include_delayed=True)
    (note,) = _messages(teams_world, Direction.NOTE)
    assert (note.body_text, teams_world.sink.mails) == ("customer is on v0.9", [])


def test_undo_inside_the_window_sends_nothing(teams_world: TeamsWorld) -> None:
    teams_world.runtime.settings.undo_seconds = 30
    thread = _customer_writes(teams_world)
    teams_world.agent_says("Sent too early", thread=thread)
    drain_jobs(teams_world.runtime)  # posts the "Email to … in 30 s" notice; the mail is not due yet
    (reply,) = _messages(teams_world, Direction.OUTBOUND)
    assert "Email to bob@customer.test in" in _texts(teams_world, thread)[-1]
    answer = teams_world.click("tl_undo", {"message_id": str(reply.id)}, thread=thread)
    assert "Not sent (undone)" in json.dumps(answer["value"])
    drain_jobs(teams_world.runtime, include_delayed=True)
    assert teams_world.sink.mails == []
    assert _messages(teams_world, Direction.OUTBOUND)[0].delivery_state is DeliveryState.CANCELLED


def test_explicit_mode_thread_text_is_never_mailed(teams_world: TeamsWorld) -> None:
    with system_scope(teams_world.runtime.factory) as session:
        session.execute(Inbox.__table__.update().values(reply_mode=ReplyMode.EXPLICIT.value))
    thread = _customer_writes(teams_world)
    teams_world.agent_says("thinking out loud", thread=thread)
    drain_jobs(teams_world.runtime, include_delayed=True)
    (note,) = _messages(teams_world, Direction.NOTE)
    assert (note.body_text, teams_world.sink.mails, _messages(teams_world, Direction.OUTBOUND)) == (
        "thinking out loud", [], [])


def test_card_actions_change_the_ticket_and_the_card_updates_in_place(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world)
    with system_scope(teams_world.runtime.factory) as session:
        ticket_id = str(session.execute(select(Message.ticket_id)).scalars().first())
    assigned = teams_world.click("tl_assign_me", {"ticket_id": ticket_id}, thread=thread)
    assert "Ann Agent" in json.dumps(assigned["value"])  # the replacement card, synchronously
    teams_world.click("tl_priority", {"ticket_id": ticket_id, "priority": "urgent"}, thread=thread)
    teams_world.click("tl_resolve", {"ticket_id": ticket_id}, thread=thread)
    drain_jobs(teams_world.runtime)
    card = json.dumps(teams_world.fake.card_of(teams_world.fake.thread(thread)[0]))
    assert all(word in card for word in ("resolved", "urgent", "Ann Agent", "tl_reopen"))
    assert teams_world.fake.calls_to("update")
    with system_scope(teams_world.runtime.factory) as session:
        kinds = [(e.kind, e.actor_label) for e in session.execute(select(TicketEvent)).scalars()]
        agent = session.execute(select(Agent)).scalar_one()
    assert ("ticket.status_changed", "Ann Agent") in kinds
    assert (agent.teams_user_id, agent.slack_user_id, agent.email) == (AGENT_AAD, None, "ann@acme.test")


def test_rate_limits_are_waited_out_and_the_card_is_posted_once(teams_world: TeamsWorld) -> None:
    teams_world.fake.rate_limit_next("create_conversation", times=1, retry_after=1)
    _customer_writes(teams_world)
    assert len(teams_world.fake.threads(CHANNEL)) == 1
    assert [c.status for c in teams_world.fake.calls_to("create_conversation")] == [429, 201]


def test_editing_the_message_inside_the_window_changes_what_is_sent(teams_world: TeamsWorld) -> None:
    teams_world.runtime.settings.undo_seconds = 30
    thread = _customer_writes(teams_world)
    teams_world.agent_says("Helo Bob, try restic unlcok", thread=thread, activity_id="1800000000500")
    edit = teams_world.activity("messageUpdate", conversation=thread, activity_id="1800000000500",
                                text="Hello Bob, try `restic unlock`")
    assert teams_world.post(edit).status_code == 200
    drain_jobs(teams_world.runtime, include_delayed=True)
    (sent,) = teams_world.sink.wait_for(1)
    assert "Hello Bob, try `restic unlock`" in sent.message.get_body(("plain",)).get_content()


def test_deleting_the_message_inside_the_window_cancels_the_reply(teams_world: TeamsWorld) -> None:
    teams_world.runtime.settings.undo_seconds = 30
    thread = _customer_writes(teams_world)
    teams_world.agent_says("oops, wrong ticket", thread=thread, activity_id="1800000000501")
    teams_world.post(teams_world.activity("messageDelete", conversation=thread, activity_id="1800000000501"))
    drain_jobs(teams_world.runtime, include_delayed=True)
    assert (_messages(teams_world, Direction.OUTBOUND)[0].delivery_state, teams_world.sink.mails) == (
        DeliveryState.CANCELLED, [])


def test_a_guest_is_told_in_the_thread_and_nothing_is_sent(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world)
    teams_world.fake.members["29:guest"] = {"name": "Gus", "aadObjectId": "g-1", "email": "gus@other.test",
                                            "tenantId": "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d", "userRole": "guest"}
    teams_world.post(teams_world.activity("message", conversation=thread, text="hi", user="29:guest", aad="g-1"))
    drain_jobs(teams_world.runtime, include_delayed=True)
    assert (_messages(teams_world, Direction.OUTBOUND), teams_world.sink.mails) == ([], [])
    assert "guest accounts cannot act" in _texts(teams_world, thread)[-1]


def test_explicit_mode_reply_to_customer_on_the_card_sends_one_mail(teams_world: TeamsWorld) -> None:
    with system_scope(teams_world.runtime.factory) as session:
        session.execute(Inbox.__table__.update().values(reply_mode=ReplyMode.EXPLICIT.value))
    thread = _customer_writes(teams_world)
    card = teams_world.fake.card_of(teams_world.fake.thread(thread)[0])
    assert "tl_reply_to_customer" in json.dumps(card)
    with system_scope(teams_world.runtime.factory) as session:
        ticket_id = str(session.execute(select(Message.ticket_id)).scalars().first())
    teams_world.click("tl_reply_to_customer", {"ticket_id": ticket_id, "reply": "Fixed now."}, thread=thread)
    drain_jobs(teams_world.runtime, include_delayed=True)
    (sent,) = teams_world.sink.wait_for(1)
    assert "Fixed now." in sent.message.get_body(("plain",)).get_content()


def test_commands_to_the_bot_in_the_channel_are_answered_in_that_thread(teams_world: TeamsWorld) -> None:
    _customer_writes(teams_world)
    answers = []
    for text in ("assign 1 me", "mine"):
        post_id = str(next(teams_world._ids))
        teams_world.agent_says(text, thread=f"{CHANNEL};messageid={post_id}", activity_id=post_id, mention=True)
        drain_jobs(teams_world.runtime)
        answers.append(teams_world.fake.thread(f"{CHANNEL};messageid={post_id}")[-1]["text"])
    assert answers[0] == "Ticket #1 assigned to Ann Agent."
    assert answers[1].startswith("#1 [new]")


def test_channel_chatter_without_a_mention_gets_no_answer(teams_world: TeamsWorld) -> None:
    _customer_writes(teams_world)
    teams_world.agent_says("lunch?", thread=f"{CHANNEL};messageid=1899", activity_id="1899")
    drain_jobs(teams_world.runtime)
    assert teams_world.fake.thread(f"{CHANNEL};messageid=1899") == []
