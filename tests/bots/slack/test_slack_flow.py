"""Email in → card and thread in (fake) Slack → agent reply event → exactly one mail out."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from core.db.session import system_scope
from core.tenancy.models import Inbox, ReplyMode
from core.tickets.models import DeliveryState, Direction, Message, TicketEvent
from tests.bots.slack.conftest import AGENT, CHANNEL, SECRET, SlackWorld, wait_until
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import block_action, command_body, interaction_body, sign


def _messages(world: SlackWorld, direction: Direction | None = None) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        stmt = select(Message).order_by(Message.created_at)
        if direction is not None:
            stmt = stmt.where(Message.direction == direction)
        return list(session.execute(stmt).scalars())


def _customer_writes(world: SlackWorld, **kw: str) -> str:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id="<cust1@customer.test>", **kw))
    drain_jobs(world.runtime)
    return world.card_ts()


def test_new_ticket_posts_a_card_and_the_customer_message_in_its_thread(world: SlackWorld) -> None:
    card_ts = _customer_writes(world, subject="Backup fails", body="restic says the repository is locked")
    thread = world.fake.messages(channel=CHANNEL, thread_ts=card_ts)
    card, reply = thread[0], thread[1]
    assert "#1 Backup fails" in card["text"]
    assert [e["action_id"] for e in card["blocks"][1]["elements"]][:1] == ["tl_assign_me"]
    assert "repository is locked" in json.dumps(reply["blocks"])


def test_agent_thread_reply_sends_exactly_one_threaded_mail(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    assert world.agent_says("Please run `restic unlock`.", thread_ts=card_ts, ts="1700000100.000001") == 200
    wait_until(lambda: _messages(world, Direction.OUTBOUND))
    drain_jobs(world.runtime)
    (mail_out,) = world.sink.wait_for(1)
    msg = mail_out.message
    assert msg["In-Reply-To"] == "<cust1@customer.test>"
    assert "<cust1@customer.test>" in msg["References"]
    assert "[TL-1]" in msg["Subject"]
    assert msg["Reply-To"].addresses[0].addr_spec.startswith("help+")
    assert "restic unlock" in msg.get_body(("plain",)).get_content()


def test_the_same_event_retried_three_times_sends_one_mail(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    for _ in range(3):
        assert world.agent_says("Try again now.", thread_ts=card_ts, ts="1700000100.000002", event_id="EvSAME") == 200
    # Slack also delivers copies under new event ids: channel+ts dedupes those.
    world.agent_says("Try again now.", thread_ts=card_ts, ts="1700000100.000002", event_id="EvCOPY")
    wait_until(lambda: _messages(world, Direction.OUTBOUND))
    drain_jobs(world.runtime)
    world.sink.wait_for(1)
    drain_jobs(world.runtime)
    assert (len(world.sink.mails), len(_messages(world, Direction.OUTBOUND))) == (1, 1)


@pytest.mark.parametrize("prefix", ["note: ", "// ", "NOTE:"])
def test_note_prefixes_make_an_internal_note_and_no_mail(world: SlackWorld, prefix: str) -> None:
    card_ts = _customer_writes(world)
    world.agent_says(f"{prefix}customer is on v0.9", thread_ts=card_ts, ts="1700000100.000003")
    (note,) = wait_until(lambda: _messages(world, Direction.NOTE))
    drain_jobs(world.runtime, include_delayed=True)
    assert note.body_text == "customer is on v0.9"
    assert world.sink.mails == []
    assert ("1700000100.000003", "memo") in {(ts, name) for _c, ts, name in world.fake.reactions}


def test_undo_inside_the_window_sends_nothing(world: SlackWorld) -> None:
    world.runtime.settings.undo_seconds = 30
    card_ts = _customer_writes(world)
    world.agent_says("Sent too early", thread_ts=card_ts, ts="1700000100.000004")
    (reply,) = wait_until(lambda: _messages(world, Direction.OUTBOUND))
    drain_jobs(world.runtime)  # posts the "Email to … in 30 s" notice; the mail is not due yet
    notice = world.fake.messages(channel=CHANNEL, thread_ts=card_ts)[-1]
    assert "Email to bob@customer.test in" in notice["text"]
    payload = block_action("tl_undo", str(reply.id), AGENT, CHANNEL, notice["ts"], thread_ts=card_ts)
    assert world.post_form("/slack/interactions", interaction_body(payload)) == 200
    wait_until(lambda: _messages(world, Direction.OUTBOUND)[0].delivery_state is DeliveryState.CANCELLED)
    drain_jobs(world.runtime, include_delayed=True)
    assert world.sink.mails == []
    assert "Not sent (undone)" in world.fake.messages(channel=CHANNEL, thread_ts=card_ts)[-1]["text"]


def test_make_internal_turns_the_pending_reply_into_a_note(world: SlackWorld) -> None:
    world.runtime.settings.undo_seconds = 30
    card_ts = _customer_writes(world)
    world.agent_says("Between us: refund them", thread_ts=card_ts, ts="1700000100.000005")
    (reply,) = wait_until(lambda: _messages(world, Direction.OUTBOUND))
    payload = block_action("tl_make_internal", str(reply.id), AGENT, CHANNEL, "1700000100.000099", thread_ts=card_ts)
    world.post_form("/slack/interactions", interaction_body(payload))
    (note,) = wait_until(lambda: _messages(world, Direction.NOTE))
    drain_jobs(world.runtime, include_delayed=True)
    assert note.body_text == "Between us: refund them"
    assert world.sink.mails == []


def test_a_forged_signature_is_refused_with_401(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    from tests.support.slack_signing import event_body, message_event

    body = event_body(message_event(CHANNEL, AGENT, "forged", "1700000100.000006", thread_ts=card_ts), "EvForged")
    assert world.http.post("/slack/events", content=body, headers=sign("wrong-secret", body)).status_code == 401
    stale = sign(SECRET, body, timestamp=1_000_000_000)
    assert world.http.post("/slack/events", content=body, headers=stale).status_code == 401
    assert _messages(world, Direction.OUTBOUND) == []


def test_explicit_mode_thread_text_is_never_mailed(world: SlackWorld) -> None:
    with system_scope(world.runtime.factory) as session:
        session.execute(Inbox.__table__.update().values(reply_mode=ReplyMode.EXPLICIT.value))
    card_ts = _customer_writes(world)
    world.agent_says("thinking out loud", thread_ts=card_ts, ts="1700000100.000007")
    (note,) = wait_until(lambda: _messages(world, Direction.NOTE))
    drain_jobs(world.runtime, include_delayed=True)
    assert (note.body_text, world.sink.mails, _messages(world, Direction.OUTBOUND)) == ("thinking out loud", [], [])


def test_delivery_shows_on_the_agents_message(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    world.agent_says("Fixed on our side.", thread_ts=card_ts, ts="1700000100.000008")
    wait_until(lambda: _messages(world, Direction.OUTBOUND))
    drain_jobs(world.runtime)
    assert (CHANNEL, "1700000100.000008", "white_check_mark") in world.fake.reactions
    assert "sent" in world.fake.messages(channel=CHANNEL, thread_ts=card_ts)[-1]["text"]


def test_a_refused_mail_shows_failed_with_the_reason_in_the_thread(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    world.sink.refuse_next(1, code=550, text="5.1.1 mailbox unavailable", stage="rcpt")
    world.agent_says("Here is the fix.", thread_ts=card_ts, ts="1700000100.000009")
    wait_until(lambda: _messages(world, Direction.OUTBOUND))
    drain_jobs(world.runtime)
    assert (CHANNEL, "1700000100.000009", "x") in world.fake.reactions
    texts = [m["text"] for m in world.fake.messages(channel=CHANNEL, thread_ts=card_ts)]
    assert any("not delivered" in t and "550" in t for t in texts)


def test_card_buttons_change_the_ticket_and_the_timeline_names_the_agent(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    with system_scope(world.runtime.factory) as session:
        ticket_id = session.execute(select(Message.ticket_id)).scalars().first()
    for action in ("tl_assign_me", "tl_resolve"):
        world.post_form("/slack/interactions",
                        interaction_body(block_action(action, str(ticket_id), AGENT, CHANNEL, card_ts)))
    def kinds() -> list[tuple[str, str | None]]:
        with system_scope(world.runtime.factory) as session:
            return [(e.kind, e.actor_label) for e in session.execute(select(TicketEvent).order_by(TicketEvent.id)).scalars()]
    wait_until(lambda: ("ticket.status_changed", "Ann Agent") in kinds())
    drain_jobs(world.runtime)
    assert ("ticket.assignee_changed", "Ann Agent") in kinds()
    card = [m for m in world.fake.messages(channel=CHANNEL) if m["ts"] == card_ts][0]
    assert "resolved" in json.dumps(card["blocks"]) and "Ann Agent" in json.dumps(card["blocks"])


def test_slash_command_lists_my_tickets(world: SlackWorld) -> None:
    _customer_writes(world)
    world.post_form("/slack/commands", command_body(text="assign 1 me", user_id=AGENT, channel_id=CHANNEL))
    wait_until(lambda: world.fake.calls_to("chat.postEphemeral"))
    world.post_form("/slack/commands", command_body(text="mine", user_id=AGENT, channel_id=CHANNEL))
    wait_until(lambda: len(world.fake.calls_to("chat.postEphemeral")) >= 2)
    texts = [c.args["text"] for c in world.fake.calls_to("chat.postEphemeral")]
    assert texts[0] == "Ticket #1 assigned to Ann Agent."
    assert texts[1].startswith("#1 [new]")


def test_an_unknown_command_gets_a_helpful_ephemeral_error(world: SlackWorld) -> None:
    _customer_writes(world)
    world.post_form("/slack/commands", command_body(text="frobnicate", user_id=AGENT, channel_id=CHANNEL))
    (call,) = wait_until(lambda: world.fake.calls_to("chat.postEphemeral"))
    assert "unknown command" in call.args["text"] and "help" in call.args["text"]


def test_the_bot_ignores_its_own_and_other_bots_messages(world: SlackWorld) -> None:
    from tests.support.slack_signing import message_event

    card_ts = _customer_writes(world)
    world.post_event(message_event(CHANNEL, "U0BOT", "echo", "1700000100.000010", thread_ts=card_ts))
    world.post_event(message_event(CHANNEL, "U0OTHER", "bot text", "1700000100.000011", thread_ts=card_ts,
                                   subtype="bot_message", bot_id="B0OTHER"))
    drain_jobs(world.runtime)
    assert len(_messages(world)) == 1


def test_editing_the_message_inside_the_window_changes_what_is_sent(world: SlackWorld) -> None:
    world.runtime.settings.undo_seconds = 30
    card_ts = _customer_writes(world)
    world.agent_says("Helo Bob, try restic unlcok", thread_ts=card_ts, ts="1700000100.000012")
    wait_until(lambda: _messages(world, Direction.OUTBOUND))
    world.post_event({"type": "message", "subtype": "message_changed", "channel": CHANNEL, "ts": "1700000100.000099",
                      "message": {"type": "message", "user": AGENT, "text": "Hello Bob, try `restic unlock`",
                                  "ts": "1700000100.000012", "thread_ts": card_ts},
                      "previous_message": {"type": "message", "user": AGENT, "text": "Helo Bob, try restic unlcok",
                                           "ts": "1700000100.000012", "thread_ts": card_ts}})
    wait_until(lambda: "Hello Bob" in _messages(world, Direction.OUTBOUND)[0].body_text)
    drain_jobs(world.runtime, include_delayed=True)
    (sent,) = world.sink.wait_for(1)
    assert "Hello Bob, try `restic unlock`" in sent.message.get_body(("plain",)).get_content()


def test_deleting_the_message_inside_the_window_cancels_the_reply(world: SlackWorld) -> None:
    world.runtime.settings.undo_seconds = 30
    card_ts = _customer_writes(world)
    world.agent_says("oops, wrong ticket", thread_ts=card_ts, ts="1700000100.000013")
    wait_until(lambda: _messages(world, Direction.OUTBOUND))
    world.post_event({"type": "message", "subtype": "message_deleted", "channel": CHANNEL,
                      "ts": "1700000100.000098", "deleted_ts": "1700000100.000013",
                      "previous_message": {"type": "message", "user": AGENT, "text": "oops, wrong ticket",
                                           "ts": "1700000100.000013", "thread_ts": card_ts}})
    wait_until(lambda: _messages(world, Direction.OUTBOUND)[0].delivery_state is DeliveryState.CANCELLED)
    drain_jobs(world.runtime, include_delayed=True)
    assert world.sink.mails == []


def test_slack_rate_limits_are_waited_out_and_the_card_is_posted_once(world: SlackWorld) -> None:
    world.fake.rate_limit_next("chat.postMessage", times=1, retry_after=1)
    card_ts = _customer_writes(world)
    cards = [m for m in world.fake.messages(channel=CHANNEL) if m["ts"] == card_ts]
    assert len(cards) == 1
    limited = [c for c in world.fake.calls_to("chat.postMessage") if c.response and c.response.get("error") == "ratelimited"]
    assert len(limited) == 1  # answered 429 once, waited, then posted


def test_thread_posts_keep_the_order_the_customer_wrote_them(world: SlackWorld) -> None:
    deliver(world.runtime, mail(message_id="<o1@customer.test>", body="first"))
    for i in range(2, 6):
        deliver(world.runtime, mail(message_id=f"<o{i}@customer.test>", body=f"message {i}",
                                    headers={"In-Reply-To": "<o1@customer.test>"}))
    drain_jobs(world.runtime)
    texts = [m["text"] for m in world.fake.messages(channel=CHANNEL, thread_ts=world.card_ts())[1:]
             if "confidence" not in json.dumps(m.get("blocks"))]  # knowledge-bot cards aside
    assert [t.split(": ", 1)[1].strip() for t in texts] == ["first", "message 2", "message 3", "message 4",
                                                             "message 5"]
