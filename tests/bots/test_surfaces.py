"""One behaviour suite, two surfaces: the agent-facing scenarios run against Slack and Teams (each
against its local fake) through a small driver per surface, and must pass on both."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any, Protocol

import pytest
from sqlalchemy import select

from core.db.session import system_scope, tenant_scope
from core.jobs.outbox import record_events
from core.runtime import Runtime
from core.tenancy.models import Inbox, ReplyMode
from core.tickets import drafts, service
from core.tickets.models import DeliveryState, Direction, Draft, DraftState, Message, Ticket
from tests.bots.slack.conftest import AGENT as SLACK_AGENT
from tests.bots.slack.conftest import CHANNEL as SLACK_CHANNEL
from tests.bots.slack.conftest import SlackWorld, fake_slack, wait_until, world  # noqa: F401 (fixtures)
from tests.bots.teams.conftest import TeamsWorld, fake_teams, jwt_issuer, teams_world  # noqa: F401 (fixtures)
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import block_action, interaction_body, message_event, view_submission
from tests.support.smtp_sink import smtp_sink  # noqa: F401 (fixture)


class Surface(Protocol):
    """What a scenario does on a surface, in the surface's own wire protocol."""

    name: str
    runtime: Runtime
    sink: Any

    def thread(self) -> str: ...
    def thread_text(self, thread: str) -> list[str]: ...
    def agent_says(self, text: str, *, thread: str, message: int, delivery: str | None = None) -> None: ...
    def click(self, verb: str, value: uuid.UUID, *, thread: str) -> None: ...
    def edit_draft(self, draft_id: uuid.UUID, text: str, *, thread: str) -> None: ...


class SlackSurface:
    name = "slack"

    def __init__(self, w: SlackWorld) -> None:
        self.w, self.runtime, self.sink = w, w.runtime, w.sink

    def thread(self) -> str:
        return self.w.card_ts()

    def thread_text(self, thread: str) -> list[str]:
        return [m["text"] + json.dumps(m.get("blocks")) for m in self.w.fake.messages(channel=SLACK_CHANNEL,
                                                                                      thread_ts=thread)]

    def agent_says(self, text: str, *, thread: str, message: int, delivery: str | None = None) -> None:
        ts = f"1700000100.{message:06d}"
        assert self.w.post_event(message_event(SLACK_CHANNEL, SLACK_AGENT, text, ts, thread_ts=thread),
                                 event_id=delivery) == 200
        wait_until(lambda: _by_dedupe(self.runtime, f"slack:{SLACK_CHANNEL}:{ts}"))  # Bolt works after its ack

    def click(self, verb: str, value: uuid.UUID, *, thread: str) -> None:
        post = self.w.fake.messages(channel=SLACK_CHANNEL, thread_ts=thread)[-1]
        self.w.post_form("/slack/interactions", interaction_body(
            block_action(verb, str(value), SLACK_AGENT, SLACK_CHANNEL, post["ts"], thread_ts=thread)))

    def edit_draft(self, draft_id: uuid.UUID, text: str, *, thread: str) -> None:
        tenant = _draft(self.runtime, draft_id).tenant_id
        self.w.post_form("/slack/interactions", interaction_body(view_submission(
            "tl_edit_draft_modal", {"reply": {"text": {"type": "plain_text_input", "value": text}}}, SLACK_AGENT,
            private_metadata=json.dumps({"draft_id": str(draft_id), "tenant_id": str(tenant)}))))


class TeamsSurface:
    name = "teams"

    def __init__(self, w: TeamsWorld) -> None:
        self.w, self.runtime, self.sink = w, w.runtime, w.sink

    def thread(self) -> str:
        return self.w.thread_id()

    def thread_text(self, thread: str) -> list[str]:
        return [json.dumps(self.w.fake.card_of(a)) for a in self.w.fake.thread(thread)]

    def agent_says(self, text: str, *, thread: str, message: int, delivery: str | None = None) -> None:
        # Teams re-sends an activity under the same id: `delivery` has no other meaning there.
        assert self.w.agent_says(text, thread=thread, activity_id=f"18000001{message:05d}", mention=True) == 200
        drain_jobs(self.runtime, only={"teams.activity"})  # a worker runs the stored activity

    def click(self, verb: str, value: uuid.UUID, *, thread: str) -> None:
        key = "message_id" if verb in ("tl_undo", "tl_make_internal") else "draft_id"
        self.w.click(verb, {key: str(value)}, thread=thread)

    def edit_draft(self, draft_id: uuid.UUID, text: str, *, thread: str) -> None:
        self.w.click("tl_edit_draft", {"draft_id": str(draft_id), "draft_text": text}, thread=thread)


def _by_dedupe(runtime: Runtime, key: str) -> bool:
    with system_scope(runtime.factory) as session:
        return session.execute(select(Message.id).where(Message.dedupe_key == key)).first() is not None


def _draft(runtime: Runtime, draft_id: uuid.UUID) -> Draft:
    with system_scope(runtime.factory) as session:
        return session.get_one(Draft, draft_id)


def _messages(runtime: Runtime, direction: Direction) -> list[Message]:
    with system_scope(runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction == direction)
                                    .order_by(Message.created_at)).scalars())


@pytest.fixture(params=["slack", "teams"])
def surface(request: pytest.FixtureRequest) -> Iterator[Surface]:
    if request.param == "slack":
        yield SlackSurface(request.getfixturevalue("world"))
    else:
        yield TeamsSurface(request.getfixturevalue("teams_world"))


def _customer_writes(s: Surface, **kw: str) -> str:
    deliver(s.runtime, mail(sender="bob@customer.test", message_id="<cust1@customer.test>", **kw))
    drain_jobs(s.runtime)
    return s.thread()


def test_email_in_gives_a_card_and_the_message_in_its_thread(surface: Surface) -> None:
    thread = _customer_writes(surface, subject="Backup fails", body="restic says the repository is locked")
    card, post = surface.thread_text(thread)[:2]
    assert "#1 Backup fails" in card and "tl_assign_me" in card
    assert "repository is locked" in post


def test_a_thread_reply_sends_exactly_one_mail_with_the_right_headers(surface: Surface) -> None:
    thread = _customer_writes(surface)
    surface.agent_says("Please run `restic unlock`.", thread=thread, message=1)
    drain_jobs(surface.runtime)
    (sent,) = surface.sink.wait_for(1)
    assert (sent.message["In-Reply-To"], "[TL-1]" in sent.message["Subject"]) == ("<cust1@customer.test>", True)
    assert "restic unlock" in sent.message.get_body(("plain",)).get_content()


def test_the_same_delivery_three_times_sends_one_mail(surface: Surface) -> None:
    thread = _customer_writes(surface)
    for _ in range(3):
        surface.agent_says("Try again now.", thread=thread, message=2, delivery="EvSAME")
    drain_jobs(surface.runtime)
    surface.sink.wait_for(1)
    drain_jobs(surface.runtime)
    assert (len(surface.sink.mails), len(_messages(surface.runtime, Direction.OUTBOUND))) == (1, 1)


def test_note_prefix_makes_a_note_and_no_mail(surface: Surface) -> None:
    thread = _customer_writes(surface)
    surface.agent_says("note: customer is on v0.9", thread=thread, message=3)
    drain_jobs(surface.runtime, include_delayed=True)
    assert ([n.body_text for n in _messages(surface.runtime, Direction.NOTE)], surface.sink.mails) == (
        ["customer is on v0.9"], [])


def test_undo_inside_the_window_sends_nothing(surface: Surface) -> None:
    surface.runtime.settings.undo_seconds = 30
    thread = _customer_writes(surface)
    surface.agent_says("Sent too early", thread=thread, message=4)
    (reply,) = _messages(surface.runtime, Direction.OUTBOUND)
    drain_jobs(surface.runtime)
    assert "Email to bob@customer.test in" in surface.thread_text(thread)[-1]
    surface.click("tl_undo", reply.id, thread=thread)
    wait_until(lambda: _messages(surface.runtime, Direction.OUTBOUND)[0].delivery_state is DeliveryState.CANCELLED)
    drain_jobs(surface.runtime, include_delayed=True)
    assert surface.sink.mails == []
    assert "Not sent (undone)" in surface.thread_text(thread)[-1]


def test_make_internal_turns_the_pending_reply_into_a_note(surface: Surface) -> None:
    surface.runtime.settings.undo_seconds = 30
    thread = _customer_writes(surface)
    surface.agent_says("Between us: refund them", thread=thread, message=7)
    (reply,) = _messages(surface.runtime, Direction.OUTBOUND)
    drain_jobs(surface.runtime)
    surface.click("tl_make_internal", reply.id, thread=thread)
    wait_until(lambda: _messages(surface.runtime, Direction.NOTE))
    drain_jobs(surface.runtime, include_delayed=True)
    assert ([n.body_text for n in _messages(surface.runtime, Direction.NOTE)], surface.sink.mails) == (
        ["Between us: refund them"], [])


def test_a_delivered_reply_shows_sent_in_the_thread(surface: Surface) -> None:
    thread = _customer_writes(surface)
    surface.agent_says("Fixed on our side.", thread=thread, message=8)
    drain_jobs(surface.runtime)
    surface.sink.wait_for(1)
    drain_jobs(surface.runtime)
    assert "Email to bob@customer.test: sent" in surface.thread_text(thread)[-1]


def test_explicit_mode_thread_text_stays_internal(surface: Surface) -> None:
    with system_scope(surface.runtime.factory) as session:
        session.execute(Inbox.__table__.update().values(reply_mode=ReplyMode.EXPLICIT.value))
    thread = _customer_writes(surface)
    surface.agent_says("thinking out loud", thread=thread, message=5)
    drain_jobs(surface.runtime, include_delayed=True)
    assert ([n.body_text for n in _messages(surface.runtime, Direction.NOTE)], surface.sink.mails) == (
        ["thinking out loud"], [])


def test_a_refused_mail_shows_failed_with_the_reason_in_the_thread(surface: Surface) -> None:
    thread = _customer_writes(surface)
    surface.sink.refuse_next(1, code=550, text="5.1.1 mailbox unavailable", stage="rcpt")
    surface.agent_says("Here is the fix.", thread=thread, message=6)
    drain_jobs(surface.runtime)
    assert any("not delivered" in t and "550" in t for t in surface.thread_text(thread))


# ---- draft cards ----

def _propose(s: Surface) -> tuple[str, uuid.UUID]:
    thread = _customer_writes(s, subject="Repository locked")
    with system_scope(s.runtime.factory) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    with tenant_scope(s.runtime.factory, ticket.tenant_id) as session:
        out = drafts.propose(session=session, ticket=service.get_ticket(session=session, ticket_id=ticket.id),
                             for_message_id=None, text="Run `restic unlock`, then retry the backup.",
                             citations=[{"title": "Removing a stale lock", "source": "075_scripting.rst"}],
                             confidence=0.82, answered=True)
        record_events(session=session, registry=s.runtime.registry, events=out.events)
    drain_jobs(s.runtime)
    return thread, out.value.id


def _draft_card(s: Surface, thread: str) -> str:
    return [t for t in s.thread_text(thread) if "82%" in t or "confidence" in t.lower()][-1]


def test_draft_send_is_one_click_and_one_mail(surface: Surface) -> None:
    thread, draft_id = _propose(surface)
    assert "restic unlock" in _draft_card(surface, thread) and "Removing a stale lock" in _draft_card(surface, thread)
    surface.click("tl_send_draft", draft_id, thread=thread)
    wait_until(lambda: _draft(surface.runtime, draft_id).state is DraftState.SENT)
    drain_jobs(surface.runtime, include_delayed=True)
    (sent,) = surface.sink.wait_for(1)
    assert "retry the backup" in sent.message.get_body(("plain",)).get_content()
    drain_jobs(surface.runtime, include_delayed=True)
    assert "Sent by Ann Agent" in _draft_card(surface, thread)


def test_draft_edit_sends_the_edited_text(surface: Surface) -> None:
    thread, draft_id = _propose(surface)
    surface.edit_draft(draft_id, "Hi Bob, please run `restic unlock`.", thread=thread)
    wait_until(lambda: _draft(surface.runtime, draft_id).state is DraftState.EDITED)
    drain_jobs(surface.runtime, include_delayed=True)
    (sent,) = surface.sink.wait_for(1)
    assert "Hi Bob, please run" in sent.message.get_body(("plain",)).get_content()


def test_draft_discard_sends_nothing(surface: Surface) -> None:
    thread, draft_id = _propose(surface)
    surface.click("tl_discard_draft", draft_id, thread=thread)
    wait_until(lambda: _draft(surface.runtime, draft_id).state is DraftState.DISCARDED)
    drain_jobs(surface.runtime, include_delayed=True)
    assert (surface.sink.mails, "Discarded by Ann Agent" in _draft_card(surface, thread)) == ([], True)


def test_a_stale_draft_offers_regenerate_and_its_send_is_refused(surface: Surface) -> None:
    thread, draft_id = _propose(surface)
    with system_scope(surface.runtime.factory) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
    with tenant_scope(surface.runtime.factory, ticket.tenant_id) as session:
        out = drafts.supersede_pending(session=session, ticket=service.get_ticket(session=session, ticket_id=ticket.id))
        record_events(session=session, registry=surface.runtime.registry, events=out)
    drain_jobs(surface.runtime)
    card = _draft_card(surface, thread)
    assert "tl_regenerate_draft" in card and "tl_send_draft" not in card
    surface.click("tl_send_draft", draft_id, thread=thread)
    drain_jobs(surface.runtime, include_delayed=True)
    assert (_draft(surface.runtime, draft_id).state, surface.sink.mails) == (DraftState.STALE, [])
