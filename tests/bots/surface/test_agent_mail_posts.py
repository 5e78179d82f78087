"""Agents by email (issue 16) as both surfaces show them: the thread post of an agent's mail says who
wrote it and that it came by email ("Ann Mailer replied by email", "… added a note by email")."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from core.db.session import system_scope
from core.tenancy.models import Agent, AgentNotification, AgentTicketToken, Inbox
from tests.bots.test_surfaces import (  # noqa: F401 (fixtures)
    Surface,
    _customer_writes,
    fake_slack,
    fake_teams,
    jwt_issuer,
    surface,
    teams_world,
    world,
)
from tests.inbound.ingest.helpers import deliver
from tests.inbound.ingest.test_agent_mail import RELAY, _agent_reply
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import smtp_sink  # noqa: F401 (fixture)

ANN = "ann.mailer@acme.test"


def _ann_is_notified(s: Surface) -> tuple[str, str, str]:
    """A customer writes; Ann (notified of new tickets by mail) gets the notification: (thread, her
    token, the notification's Message-ID)."""
    s.runtime.settings.trusted_authserv_ids = RELAY
    with system_scope(s.runtime.factory) as session:
        tenant_id = session.execute(select(Inbox.tenant_id)).scalar_one()
        session.add(Agent(tenant_id=tenant_id, name="Ann Mailer", email=ANN, notify_prefs={"new_tickets": True}))
    thread = _customer_writes(s)
    with system_scope(s.runtime.factory) as session:
        token = session.execute(select(AgentTicketToken.token)).scalar_one()
        mid = session.execute(select(AgentNotification.email_message_id)).scalar_one()
    return thread, token, mid


@pytest.mark.parametrize(("body", "byline"), [
    ("Please restart the backup.", "Ann Mailer replied by email"),
    ("note: customer is on the old plan", "Ann Mailer added a note by email"),
])
def test_an_agents_mail_shows_in_the_thread_as_written_by_email(
    surface: Surface, body: str, byline: str  # noqa: F811
) -> None:
    thread, token, mid = _ann_is_notified(surface)
    deliver(surface.runtime, _agent_reply(token, mid, body, sender=ANN), peer="127.0.0.1")
    drain_jobs(surface.runtime, include_delayed=True)
    posts = surface.thread_text(thread)
    assert [byline in p for p in posts].count(True) == 1
