"""Notification mail to agents (issue 16): who is told, and what the mail carries."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from core.db.session import system_scope, tenant_scope
from core.jobs.outbox import record_events
from core.runtime import Runtime
from core.tenancy.models import Agent, AgentNotification, AgentRole, AgentTicketToken
from core.tickets import service
from core.tickets.events import EventKind
from core.tickets.models import ActorKind, Ticket
from core.tickets.schemas import Actor
from core.tickets.agent_tokens import NotifyPrefs
from inbound.email.notify import AgentFacts, EventFacts, recipients
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail, tickets
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import SmtpSink, smtp_sink  # noqa: F401 (fixture)

ANN, BEN = uuid.uuid4(), uuid.uuid4()


def _agents(**prefs: bool) -> list[AgentFacts]:
    return [AgentFacts(ANN, "ann@acme.test", True, AgentRole.AGENT, NotifyPrefs(**prefs)),
            AgentFacts(BEN, "ben@acme.test", True, AgentRole.READ_ONLY, NotifyPrefs(new_tickets=True))]


def _event(kind: str, **kw: object) -> EventFacts:
    base: dict[str, object] = dict(kind=kind, assignee_id=None, actor_agent_id=None, automatic=False,
                                   first_message=False, inbound=False, assigned_to=None, draft_ready=False)
    return EventFacts(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("event", "prefs", "expected"),
    [
        (_event(EventKind.TICKET_OPENED), {"new_tickets": True}, [(ANN, "new-ticket")]),
        (_event(EventKind.TICKET_OPENED), {}, []),  # default: not every new ticket
        (_event(EventKind.TICKET_OPENED, automatic=True), {"new_tickets": True}, []),
        (_event(EventKind.MESSAGE_APPENDED, inbound=True, assignee_id=ANN), {}, [(ANN, "customer-reply")]),
        (_event(EventKind.MESSAGE_APPENDED, inbound=True, assignee_id=ANN, automatic=True), {}, []),
        (_event(EventKind.ASSIGNEE_CHANGED, assigned_to=ANN), {}, [(ANN, "assigned")]),
        (_event(EventKind.ASSIGNEE_CHANGED, assigned_to=ANN, actor_agent_id=ANN), {}, []),  # she took it herself
        (_event(EventKind.DRAFT_CHANGED, draft_ready=True, assignee_id=ANN), {"drafts": False}, []),
    ],
)
def test_recipients_follow_preferences_and_never_the_actor(
    event: EventFacts, prefs: dict[str, bool], expected: list[tuple[uuid.UUID, str]]
) -> None:
    assert recipients(event, _agents(**prefs)) == expected


@pytest.fixture()
def tenant_id(runtime: Runtime, smtp_sink: SmtpSink) -> Iterator[uuid.UUID]:  # noqa: F811
    runtime.settings.outbound_smtp_url = SecretStr(smtp_sink.url)
    tenant, _ = make_tenant(runtime, address="help@acme.test")
    with system_scope(runtime.factory) as session:
        session.add(Agent(tenant_id=tenant.id, name="Ann", email="ann@acme.test", notify_prefs={"new_tickets": True}))
        session.add(Agent(tenant_id=tenant.id, name="Ben", email="ben@acme.test"))
    yield tenant.id


def test_a_new_ticket_notification_carries_the_agent_token_and_its_message_id_is_stored(
    runtime: Runtime, tenant_id: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    deliver(runtime, mail(body="restic says the repository is locked"))
    drain_jobs(runtime)
    (sent,) = smtp_sink.wait_for(1)
    msg = sent.message
    with system_scope(runtime.factory) as session:
        token = session.execute(select(AgentTicketToken)).scalar_one()
        stored = session.execute(select(AgentNotification.email_message_id)).scalar_one()
    (ticket,) = tickets(runtime)
    assert sent.rcpt_tos == ("ann@acme.test",) and sent.mail_from in ("", "<>")  # RFC 3834 §3.3
    assert msg["Reply-To"].addresses[0].addr_spec == f"help+{token.token}@acme.test"
    assert token.token != ticket.reply_token
    assert msg["Message-ID"] == f"<{stored}>"
    assert msg["Auto-Submitted"] == "auto-generated"
    body = msg.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "restic says the repository is locked" in text and "#resolve" in text and "Status: new" in text


def test_assignment_by_someone_else_notifies_the_assignee_once(
    runtime: Runtime, tenant_id: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    deliver(runtime, mail())
    drain_jobs(runtime)
    smtp_sink.wait_for(1)
    (ticket,) = tickets(runtime)
    with tenant_scope(runtime.factory, tenant_id) as session:
        ann = session.execute(select(Agent).where(Agent.name == "Ann")).scalar_one()
        ben = session.execute(select(Agent).where(Agent.name == "Ben")).scalar_one()
        row = session.get_one(Ticket, ticket.id)
        out = service.assign(session=session, ticket=row, agent_id=ben.id, actor=Actor(ActorKind.AGENT, str(ann.id), "Ann"))
        record_events(session=session, registry=runtime.registry, events=out.events)
    drain_jobs(runtime)
    drain_jobs(runtime)  # a second run of the same rows sends nothing more
    time.sleep(0.2)
    assert [m.rcpt_tos for m in smtp_sink.mails] == [("ann@acme.test",), ("ben@acme.test",)]
