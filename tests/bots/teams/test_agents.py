"""A Teams user is the agent the tenant already has under the same email (linked, not duplicated)."""

from __future__ import annotations

from sqlalchemy import select

from core.db.session import system_scope
from core.tenancy.models import Agent, Inbox
from tests.bots.teams.conftest import AGENT_AAD, TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs


def test_an_agent_known_by_email_gets_the_teams_id_on_first_use(teams_world: TeamsWorld) -> None:
    with system_scope(teams_world.runtime.factory) as session:
        tenant_id = session.execute(select(Inbox.tenant_id)).scalar_one()
        session.add(Agent(tenant_id=tenant_id, name="Ann (Slack)", email="ann@acme.test", slack_user_id="U0ANN"))
    deliver(teams_world.runtime, mail(message_id="<cust1@customer.test>"))
    drain_jobs(teams_world.runtime)
    teams_world.agent_says("note: same person, other surface", thread=teams_world.thread_id())
    drain_jobs(teams_world.runtime)
    with system_scope(teams_world.runtime.factory) as session:
        agents = [(a.name, a.slack_user_id, a.teams_user_id) for a in session.execute(select(Agent)).scalars()]
    assert agents == [("Ann (Slack)", "U0ANN", AGENT_AAD)]
