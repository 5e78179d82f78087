"""Attachments both ways in Slack (issue 10, item 4): customers' files as signed links in the thread,
agents' shared files mailed with their reply."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from sqlalchemy import select

from bots.slack import blocks
from bots.slack.files import FETCH_JOB, download_allowed
from bots.surface import views
from core.db.session import system_scope, tenant_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.settings import Settings
from core.tickets import replies
from core.tickets.models import Attachment, DeliveryState, Direction, Message
from tests.admin_api.test_attachment_links import PDF, customer_mail
from tests.bots.slack.conftest import AGENT, CHANNEL, SlackWorld, wait_until
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import message_event


def test_a_customers_pdf_opens_from_the_link_in_the_slack_thread(world: SlackWorld) -> None:
    deliver(world.runtime, customer_mail("help@acme.test", [("invoice <March>.pdf", "application/pdf", PDF)]))
    drain_jobs(world.runtime)
    post = world.fake.messages(channel=CHANNEL, thread_ts=world.card_ts())[1]
    line = json.dumps(post["blocks"])
    (url,) = re.findall(r"<(http[^|>]+)\|invoice &lt;March&gt;.pdf \(", line)
    got = world.http.get(url.replace("&amp;", "&").removeprefix(world.runtime.settings.public_url))
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, PDF, "application/pdf")
    assert got.headers["content-disposition"].startswith("attachment; filename=")


def test_file_links_are_escaped_and_fit_a_context_line() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="files", attachments=[("a|b>c&d.pdf", 10)] * 40,
                             links=["https://tl.example/attachments/v1.x"] * 40)
    context = blocks.post_blocks(post, with_original=False)[-1].to_dict()["elements"][0]["text"]
    assert context.startswith(":paperclip: <https://tl.example/attachments/v1.x|a|b&gt;c&amp;d.pdf (10 B)>")
    assert len(context) <= 2000 and context.endswith("more")


# ---- agents' files → customer ----

REPORT = b"%PDF-1.5\n" + bytes(range(256)) * 20 + b"agent's fix\n%%EOF\n"


def _outbound(world: SlackWorld) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction == Direction.OUTBOUND)).scalars())


def _attachments(world: SlackWorld) -> list[Attachment]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Attachment).join(Message, Message.id == Attachment.message_id)
                                    .where(Message.direction == Direction.OUTBOUND)).scalars())


def _customer_writes(world: SlackWorld) -> str:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id="<cust1@customer.test>"))
    drain_jobs(world.runtime)
    return world.card_ts()


def _share(world: SlackWorld, card_ts: str, files: list[dict[str, object]], *, ts: str = "1700000200.000001",
           event_id: str | None = None, text: str = "Here is the fixed report.") -> int:
    event = message_event(CHANNEL, AGENT, text, ts, thread_ts=card_ts, subtype="file_share", files=files,
                          upload=False)
    return world.post_event(event, event_id=event_id)


def _ephemerals(world: SlackWorld) -> list[str]:
    return [str(c.args.get("text")) for c in world.fake.calls_to("chat.postEphemeral")]


def test_a_file_shared_with_a_reply_reaches_the_customer_with_its_exact_bytes(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    shared = world.fake.add_file("report (final).pdf", REPORT, mimetype="application/pdf")
    assert _share(world, card_ts, [shared]) == 200
    wait_until(lambda: _outbound(world))
    drain_jobs(world.runtime)
    (sent,) = world.sink.wait_for(1)
    (part,) = list(sent.message.iter_attachments())
    assert (part.get_filename(), part.get_content_type(), part.get_content()) == (
        "report (final).pdf", "application/pdf", REPORT)
    assert "fixed report" in sent.message.get_body(("plain",)).get_content()
    (download,) = world.fake.calls_to("files.download")
    assert download.token == "xoxb-test-token"  # the bot token, sent to Slack's file host only


def test_a_file_over_the_limit_is_refused_to_the_agent_and_nothing_is_sent(world: SlackWorld) -> None:
    world.runtime.settings.attachment_max_file_bytes = 1000
    card_ts = _customer_writes(world)
    _share(world, card_ts, [world.fake.add_file("huge.pdf", REPORT, mimetype="application/pdf")])
    refusal = wait_until(lambda: _ephemerals(world))[0]
    assert "huge.pdf" in refusal and "at most 1000 B" in refusal and "not sent" in refusal
    drain_jobs(world.runtime, include_delayed=True)
    assert (_outbound(world), world.sink.mails, world.fake.calls_to("files.download")) == ([], [], [])


def test_a_file_larger_than_slack_declared_fails_the_reply_with_the_reason(world: SlackWorld) -> None:
    world.runtime.settings.attachment_max_file_bytes = 1000
    card_ts = _customer_writes(world)
    lying = world.fake.add_file("small.pdf", REPORT, mimetype="application/pdf", size=10)  # declared 10 B
    _share(world, card_ts, [lying])
    wait_until(lambda: _outbound(world))
    drain_jobs(world.runtime, include_delayed=True)
    (reply,) = _outbound(world)
    assert reply.delivery_state is DeliveryState.FAILED and "small.pdf" in (reply.delivery_error or "")
    assert any("Your reply was not sent" in t and "small.pdf" in t for t in _ephemerals(world))
    assert world.sink.mails == [] and _attachments(world) == []


def test_a_redelivered_share_attaches_once_and_mails_once(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    shared = world.fake.add_file("report.pdf", REPORT, mimetype="application/pdf")
    for event_id in ("EvSAME", "EvSAME", "EvCOPY"):  # Slack's retry, and a copy under a new event id
        _share(world, card_ts, [shared], event_id=event_id)
    wait_until(lambda: _outbound(world))
    with system_scope(world.runtime.factory) as session:  # the fetch job delivered twice, too
        (row,) = session.execute(select(OutboxRow).where(OutboxRow.job == FETCH_JOB)).scalars()
        session.add(OutboxRow(tenant_id=row.tenant_id, job=row.job, payload=row.payload, ticket_id=row.ticket_id,
                              status=OutboxStatus.PENDING))
    drain_jobs(world.runtime)
    world.sink.wait_for(1)
    drain_jobs(world.runtime, include_delayed=True)
    assert (len(world.sink.mails), len(_outbound(world)), len(_attachments(world))) == (1, 1, 1)


def test_undo_before_the_files_arrive_sends_nothing(world: SlackWorld) -> None:
    world.runtime.settings.undo_seconds = 30
    card_ts = _customer_writes(world)
    _share(world, card_ts, [world.fake.add_file("report.pdf", REPORT, mimetype="application/pdf")])
    (reply,) = wait_until(lambda: _outbound(world))
    with tenant_scope(world.runtime.factory, reply.tenant_id) as session:  # the agent's Undo
        replies.cancel_pending_reply(session=session, message=replies.lock_message(session=session,
                                                                                    message_id=reply.id))
    drain_jobs(world.runtime, include_delayed=True)
    assert world.sink.mails == [] and world.fake.calls_to("files.download") == []


@pytest.mark.parametrize(("url", "allowed"), [
    ("https://files.slack.com/files-pri/T1-F1/download/a.pdf", True),
    ("https://files.slack.com:443/files-pri/T1-F1/download/a.pdf", True),
    ("http://files.slack.com/files-pri/T1-F1/download/a.pdf", False),
    ("https://files.slack.com.evil.example/x", False),
    ("https://evil.example/files.slack.com/x", False),
    ("https://user@files.slack.com/x", False),
    ("https://files.slack.com:8443/x", False),
    ("file:///etc/passwd", False),
    ("", False),
])
def test_the_bot_token_goes_only_to_slacks_file_host(url: str, allowed: bool) -> None:
    assert download_allowed(url, Settings(SLACK_API_URL="https://slack.com/api/")) is allowed


def test_a_file_url_on_another_host_is_not_fetched(world: SlackWorld) -> None:
    card_ts = _customer_writes(world)
    shared = world.fake.add_file("report.pdf", REPORT, mimetype="application/pdf")
    world.fake.files[shared["id"]]["url_private_download"] = "https://evil.example/steal"
    _share(world, card_ts, [shared])
    wait_until(lambda: _outbound(world))
    drain_jobs(world.runtime, include_delayed=True)
    (reply,) = _outbound(world)
    assert reply.delivery_state is DeliveryState.FAILED and "not on Slack's file host" in (reply.delivery_error or "")
    assert world.sink.mails == []
