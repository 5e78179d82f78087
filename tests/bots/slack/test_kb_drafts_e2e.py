"""Knowledge base → customer mail over SMTP → draft card in the Slack thread → agent decides.

Nothing of ours is stubbed: the restic docs are ingested with the local model, the mail goes
through our SMTP server and ingest pipeline, the `knowledge.draft` job retrieves and writes, the
Slack tasks post to the fake Slack Web API, and Send goes out to an SMTP sink.
"""

from __future__ import annotations

import json
import smtplib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core.db.session import system_scope
from core.tenancy.models import Inbox
from core.tickets.models import Direction, Draft, DraftState, Message, TicketEvent
from inbound.ingest.accept import PROCESS_JOB
from knowledge.draft_job import knowledge_for
from tests.bots.slack.conftest import AGENT, CHANNEL, SlackWorld, wait_until
from tests.inbound.ingest.helpers import mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import block_action, interaction_body
from tests.support.threadline_smtp import RunningSmtp, running_smtp

pytestmark = pytest.mark.slow

RESTIC_DOCS = Path(__file__).resolve().parents[4] / "shared" / "kb" / "restic-docs"
KB_FILES = ("070_encryption.rst", "050_restore.rst")
CUSTOMER = "bob@customer.test"


@pytest.fixture()
def kb_world(world: SlackWorld) -> Iterator[tuple[SlackWorld, RunningSmtp]]:
    if not RESTIC_DOCS.is_dir():
        pytest.skip(f"{RESTIC_DOCS} is not there (shared/ sits beside the repository)")
    rt = world.runtime
    with system_scope(rt.factory) as session:
        tenant_id = session.execute(select(Inbox.tenant_id).where(Inbox.address == "help@acme.test")).scalar_one()
    report = knowledge_for(rt.settings, rt.factory).ingest([RESTIC_DOCS / f for f in KB_FILES], tenant_id=tenant_id)
    assert report.chunks_written > 0
    with running_smtp(rt) as smtp:
        yield world, smtp


def _send(smtp: RunningSmtp, raw: bytes) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.sendmail(CUSTOMER, ["help@acme.test"], raw)  # returns only after our 250


def _draft_cards(world: SlackWorld) -> list[dict[str, Any]]:
    """The bot's draft cards in the ticket's thread, as they read now (updates applied), oldest first."""
    thread = world.fake.messages(channel=CHANNEL, thread_ts=world.card_ts())
    return [m for m in thread if ":robot_face:" in json.dumps(m.get("blocks"))]


def _buttons(card: dict[str, Any]) -> list[str]:
    return [e["action_id"] for e in card["blocks"][-1].get("elements", []) if "action_id" in e]


def _drafts(world: SlackWorld) -> list[Draft]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Draft).order_by(Draft.created_at)).scalars())


def _click(world: SlackWorld, action: str, draft_id: uuid.UUID, card: dict[str, Any]) -> None:
    world.post_form("/slack/interactions", interaction_body(
        block_action(action, str(draft_id), AGENT, CHANNEL, card["ts"], thread_ts=world.card_ts())))


def _timeline(world: SlackWorld) -> list[str]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(TicketEvent.kind).order_by(TicketEvent.id)).scalars())


def _outbound(world: SlackWorld) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction == Direction.OUTBOUND)).scalars())


QUESTION = mail(sender=CUSTOMER, subject="Changing our repository password",
                body="Hi,\n\nhow do I change the password of our restic repository?\n\nThanks, Bob",
                message_id="<q1@customer.test>")


def test_a_kb_question_by_mail_gets_a_draft_card_citing_the_doc_and_send_mails_it(kb_world: Any) -> None:
    world, smtp = kb_world
    _send(smtp, QUESTION)
    drain_jobs(world.runtime)

    (card,) = _draft_cards(world)
    (draft,) = _drafts(world)
    dumped = json.dumps(card["blocks"])
    assert draft.state is DraftState.PENDING and draft.confidence >= world.runtime.settings.kb_min_confidence
    assert Path(str(draft.citations[0]["source"])).name == "070_encryption.rst"
    assert "070_encryption.rst" in dumped and "Suggested answer" in dumped
    assert "passwd (changes a password)" in draft.text  # restic's own words, from the document
    assert str(RESTIC_DOCS) not in draft.text  # no server paths in what the customer reads
    assert _buttons(card) == ["tl_send_draft", "tl_edit_draft", "tl_discard_draft"]

    _click(world, "tl_send_draft", draft.id, card)
    wait_until(lambda: _drafts(world)[0].state is DraftState.SENT)
    drain_jobs(world.runtime, include_delayed=True)
    (sent,) = world.sink.wait_for(1)
    assert sent.message["To"] == CUSTOMER and sent.message["In-Reply-To"] == "<q1@customer.test>"
    body = sent.message.get_body(("plain",)).get_content()
    assert draft.text.strip().splitlines()[1] in body
    assert len(_outbound(world)) == 1
    assert {"draft.proposed", "draft.sent"} <= set(_timeline(world))
    assert "Sent by Ann Agent" in json.dumps(_draft_cards(world)[0]["blocks"])


def test_an_off_topic_mail_gets_no_draft_but_the_closest_articles(kb_world: Any) -> None:
    world, smtp = kb_world
    _send(smtp, mail(sender=CUSTOMER, subject="Refund", message_id="<r1@customer.test>",
                     body="Can I get a refund for my annual subscription? I was charged twice."))
    drain_jobs(world.runtime)

    (card,) = _draft_cards(world)
    (draft,) = _drafts(world)
    assert draft.state is DraftState.NO_ANSWER and draft.confidence < world.runtime.settings.kb_min_confidence
    dumped = json.dumps(card["blocks"])
    assert "No confident answer" in dumped and draft.citations  # the closest articles, listed
    assert any(Path(str(c["source"])).name in dumped for c in draft.citations)
    assert _buttons(card) == ["tl_regenerate_draft"]  # nothing to send
    drain_jobs(world.runtime, include_delayed=True)
    assert world.sink.mails == [] and _outbound(world) == []
    assert "draft.no_answer" in _timeline(world)


def test_a_newer_customer_mail_makes_the_pending_draft_stale_at_once(kb_world: Any) -> None:
    world, smtp = kb_world
    _send(smtp, QUESTION)
    drain_jobs(world.runtime)
    (first,) = _drafts(world)
    first_card = _draft_cards(world)[0]

    _send(smtp, mail(sender=CUSTOMER, subject="Re: Changing our repository password",
                     message_id="<q2@customer.test>", headers={"In-Reply-To": "<q1@customer.test>"},
                     body="Also: how do I restore a single file from a snapshot?"))
    # Stale as the new message is stored, before the knowledge job ran: no window where Send works.
    drain_jobs(world.runtime, only={PROCESS_JOB})
    assert _drafts(world)[0].state is DraftState.STALE
    _click(world, "tl_send_draft", first.id, first_card)
    wait_until(lambda: world.fake.calls_to("chat.postEphemeral"))
    assert "stale" in world.fake.calls_to("chat.postEphemeral")[-1].args["text"]

    drain_jobs(world.runtime)
    old_card, new_card = _draft_cards(world)
    assert "Out of date" in json.dumps(old_card["blocks"]) and _buttons(old_card) == ["tl_regenerate_draft"]
    second = _drafts(world)[1]
    assert second.state is DraftState.PENDING and Path(str(second.citations[0]["source"])).name == "050_restore.rst"
    assert _buttons(new_card)[0] == "tl_send_draft"
    drain_jobs(world.runtime, include_delayed=True)
    assert world.sink.mails == []
    assert "draft.stale" in _timeline(world)


def test_after_an_agent_replied_the_bot_drafts_again_only_when_asked(kb_world: Any) -> None:
    world, smtp = kb_world
    _send(smtp, QUESTION)
    drain_jobs(world.runtime)
    assert world.agent_says("Hi Bob, I'll check and come back to you.", thread_ts=world.card_ts(),
                            ts="1700000100.000100") == 200
    wait_until(lambda: _outbound(world))
    drain_jobs(world.runtime, include_delayed=True)
    world.sink.wait_for(1)

    _send(smtp, mail(sender=CUSTOMER, subject="Re: Changing our repository password",
                     message_id="<q3@customer.test>", headers={"In-Reply-To": "<q1@customer.test>"},
                     body="And how do I restore a single file from a snapshot?"))
    drain_jobs(world.runtime)
    assert [d.state for d in _drafts(world)] == [DraftState.STALE]  # no new draft after a human answered

    _click(world, "tl_regenerate_draft", _drafts(world)[0].id, _draft_cards(world)[0])
    wait_until(lambda: "draft.requested" in _timeline(world))
    drain_jobs(world.runtime)
    states = [d.state for d in _drafts(world)]
    assert states == [DraftState.STALE, DraftState.PENDING]
    assert Path(str(_drafts(world)[1].citations[0]["source"])).name == "050_restore.rst"
    assert len(_draft_cards(world)) == 2
