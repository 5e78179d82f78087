"""A visitor who left an email and is away gets the agent's reply by mail too; their mail answer
continues the same ticket and shows in the chat. A visitor with the chat open gets no mail."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.session import system_scope, tenant_scope
from core.jobs.outbox import record_events
from core.settings import Settings
from core.tenancy.models import Inbox
from core.tickets import replies, service
from core.tickets.models import ActorKind, Ticket, TicketStatus
from core.tickets.schemas import Actor
from tests.inbound.ingest.helpers import deliver, mail
from tests.inbound.widget.conftest import OWN, Visitor, WidgetWorld
from tests.support.jobs import drain_jobs
from tests.support.servers import RedisForTests
from tests.support.smtp_sink import SmtpSink

AGENT = Actor(ActorKind.AGENT, None, "Ann Agent")


@pytest.fixture()
def settings(tmp_path: Path, redis_server: RedisForTests, smtp_sink: SmtpSink) -> Settings:
    return Settings(
        THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2,
        REDIS_URL=redis_server.url, THREADLINE_PUBLIC_URL=OWN, THREADLINE_SECRET_KEY="widget-test-secret-key",
        THREADLINE_UNDO_SECONDS=0, THREADLINE_OUTBOUND_SMTP_URL=smtp_sink.url,
    )


def _inbox(world: WidgetWorld) -> Inbox:
    with system_scope(world.runtime.factory) as session:
        return session.get_one(Inbox, uuid.UUID(world.inbox_id))


def _ticket(world: WidgetWorld) -> Ticket:
    with system_scope(world.runtime.factory) as session:
        (ticket,) = session.execute(select(Ticket)).scalars()
        return ticket


def _agent_replies(world: WidgetWorld, text: str) -> None:
    ticket = _ticket(world)
    with tenant_scope(world.runtime.factory, ticket.tenant_id) as session:
        t = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
        replies.send_public_reply(session=session, registry=world.runtime.registry, ticket=t, text=text, actor=AGENT)
    drain_jobs(world.runtime, include_delayed=True)


def _chatting_visitor(world: WidgetWorld, email: str | None = "vera@visitor.test") -> Visitor:
    v = world.visitor()
    v.start(name="Vera", **({"email": email} if email else {}))
    v.send("Where is my parcel?", "client-0001")
    drain_jobs(world.runtime)
    return v


def test_an_offline_visitor_gets_the_reply_by_mail_and_their_mail_answer_shows_in_the_chat(
    widget: WidgetWorld, smtp_sink: SmtpSink
) -> None:
    v = _chatting_visitor(widget)
    _agent_replies(widget, "It ships today")
    (sent,) = smtp_sink.wait_for(1)
    ticket, inbox = _ticket(widget), _inbox(widget)
    letter = sent.message
    text = letter.get_body(preferencelist=("plain",))
    assert text is not None and "It ships today" in text.get_content()
    assert sent.rcpt_tos == ("vera@visitor.test",)
    assert ticket.reply_token in str(letter["Reply-To"]) and f"TL-{ticket.number}" in str(letter["Subject"])
    answer = mail(sender="Vera <vera@visitor.test>", to=inbox.address, subject=f"Re: {letter['Subject']}",
                  body="Great, thank you!", headers={"In-Reply-To": str(letter["Message-ID"]),
                                                     "References": str(letter["Message-ID"])})
    result = deliver(widget.runtime, answer, to=inbox.address)
    drain_jobs(widget.runtime)
    assert result.ticket_id == ticket.id  # the same ticket, threaded by our Message-ID
    assert [(m["author"], m["body_text"]) for m in v.history().json()["messages"]] == [
        ("visitor", "Where is my parcel?"), ("agent", "It ships today"), ("visitor", "Great, thank you!"),
    ]
    drain_jobs(widget.runtime)  # a rerun of every job: still one copy, one mirrored answer
    assert len(smtp_sink.mails) == 1 and len(v.history().json()["messages"]) == 3


def test_a_visitor_with_the_chat_open_gets_no_mail(widget: WidgetWorld, smtp_sink: SmtpSink) -> None:
    v = _chatting_visitor(widget)
    with widget.http.websocket_connect(f"/widget/v1/socket?inbox={widget.inbox_id}",
                                       headers={"Origin": v.origin}) as ws:
        ws.send_json({"type": "auth", "token": v.token})
        assert ws.receive_json() == {"type": "ready"}
        _agent_replies(widget, "It ships today")
        assert ws.receive_json() == {"type": "message", "seq": 2}
    assert smtp_sink.mails == []


def test_an_offline_visitor_without_an_email_gets_no_mail(widget: WidgetWorld, smtp_sink: SmtpSink) -> None:
    v = _chatting_visitor(widget, email=None)
    _agent_replies(widget, "It ships today")
    assert smtp_sink.mails == [] and len(v.history().json()["messages"]) == 2


def test_the_socket_hears_the_ticket_resolved_and_reopened(widget: WidgetWorld) -> None:
    v = _chatting_visitor(widget)
    ticket = _ticket(widget)
    with widget.http.websocket_connect(f"/widget/v1/socket?inbox={widget.inbox_id}",
                                       headers={"Origin": v.origin}) as ws:
        ws.send_json({"type": "auth", "token": v.token})
        assert ws.receive_json() == {"type": "ready"}
        for status in (TicketStatus.RESOLVED, TicketStatus.OPEN):
            with tenant_scope(widget.runtime.factory, ticket.tenant_id) as session:
                t = service.get_ticket(session=session, ticket_id=ticket.id, for_update=True)
                out = service.change_status(session=session, ticket=t, status=status, actor=AGENT)
                record_events(session=session, registry=widget.runtime.registry, events=out.events)
            drain_jobs(widget.runtime)
            assert ws.receive_json() == {"type": "status", "status": status.value}
