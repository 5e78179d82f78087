"""Who may act on tickets from Slack: members of the bound channel (or the configured user group),
never guests or strangers, read-only agents only look; a command's tenant is never a guess."""

from __future__ import annotations

from sqlalchemy import select, update

from core.db.session import system_scope
from core.tenancy.models import Agent, AgentRole, AuditEntry, Inbox
from core.tenancy.service import create_agent
from core.tickets.models import Direction, Message
from tests.bots.slack.conftest import AGENT, CHANNEL, SlackWorld, wait_until
from tests.bots.slack.test_oauth import OAuthWorld, oauth  # noqa: F401 (fixture)
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import command_body, message_event

GUEST, OUTSIDER = "U0GUEST", "U0OUTSIDE"


def _ticket_thread(world: SlackWorld) -> str:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id="<who1@customer.test>"))
    drain_jobs(world.runtime)
    return world.card_ts()


def _says(world: SlackWorld, user: str, text: str, *, thread_ts: str, ts: str) -> None:
    assert world.post_event(message_event(CHANNEL, user, text, ts, thread_ts=thread_ts)) == 200


def _ephemeral_to(world: SlackWorld, user: str) -> str:
    calls = wait_until(lambda: [c for c in world.fake.calls_to("chat.postEphemeral") if c.args.get("user") == user])
    return str(calls[-1].args["text"])


def _agent_messages(world: SlackWorld) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction.in_([Direction.OUTBOUND, Direction.NOTE])))
                    .scalars())


def test_a_guest_is_refused_with_the_reason(world: SlackWorld) -> None:
    world.fake.users[GUEST] = {"real_name": "Gus Guest", "is_restricted": True}
    card_ts = _ticket_thread(world)
    _says(world, GUEST, "I can answer this!", thread_ts=card_ts, ts="1700000300.000001")
    assert "guest accounts cannot act" in _ephemeral_to(world, GUEST)
    assert _agent_messages(world) == []


def test_a_user_outside_the_bound_channel_is_refused(world: SlackWorld) -> None:
    world.fake.users[OUTSIDER] = {"real_name": "Olga Outside"}
    world.fake.members[CHANNEL] = [AGENT]
    card_ts = _ticket_thread(world)
    _says(world, OUTSIDER, "note: let me take this", thread_ts=card_ts, ts="1700000300.000002")
    assert f"only members of <#{CHANNEL}>" in _ephemeral_to(world, OUTSIDER)
    assert _agent_messages(world) == []


def test_a_user_of_another_workspace_is_refused(world: SlackWorld) -> None:
    world.fake.users[OUTSIDER] = {"real_name": "Connie Connect", "team_id": "T0OTHER"}
    card_ts = _ticket_thread(world)
    _says(world, OUTSIDER, "note: hello from a shared channel", thread_ts=card_ts, ts="1700000300.000003")
    assert "another workspace" in _ephemeral_to(world, OUTSIDER)
    assert _agent_messages(world) == []


def test_with_a_user_group_only_its_members_act(world: SlackWorld) -> None:
    world.fake.usergroups["S0SUPPORT"] = [OUTSIDER]
    with system_scope(world.runtime.factory) as session:
        session.execute(update(Inbox).where(Inbox.slack_channel_id == CHANNEL).values(slack_user_group_id="S0SUPPORT"))
    card_ts = _ticket_thread(world)
    _says(world, AGENT, "note: channel member, not in the group", thread_ts=card_ts, ts="1700000300.000004")
    assert "<!subteam^S0SUPPORT>" in _ephemeral_to(world, AGENT)
    _says(world, OUTSIDER, "note: in the group", thread_ts=card_ts, ts="1700000300.000005")
    (note,) = wait_until(lambda: _agent_messages(world))
    assert note.body_text == "in the group"


def test_a_read_only_agent_cannot_reply(world: SlackWorld) -> None:
    with system_scope(world.runtime.factory) as session:
        tenant_id = session.execute(select(Inbox.tenant_id).where(Inbox.slack_channel_id == CHANNEL)).scalar_one()
        create_agent(session=session, tenant_id=tenant_id, name="Ann Agent", email="ann@acme.test",
                     role=AgentRole.READ_ONLY, slack_user_id=AGENT)
    card_ts = _ticket_thread(world)
    world.agent_says("Please reboot.", thread_ts=card_ts, ts="1700000300.000006")
    assert "read-only access" in _ephemeral_to(world, AGENT)
    drain_jobs(world.runtime, include_delayed=True)
    assert (_agent_messages(world), world.sink.mails) == ([], [])


def test_an_allowed_member_becomes_an_agent_and_the_action_is_audited(world: SlackWorld) -> None:
    card_ts = _ticket_thread(world)
    world.agent_says("note: looking", thread_ts=card_ts, ts="1700000300.000007")
    wait_until(lambda: _agent_messages(world))
    with system_scope(world.runtime.factory) as session:
        agent = session.execute(select(Agent).where(Agent.slack_user_id == AGENT)).scalar_one()
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == "ticket.noted")).scalar_one()
    assert (agent.role, entry.actor) == (AgentRole.AGENT, f"slack:{AGENT} (Ann Agent)")


def test_a_dm_command_with_several_bound_tenants_and_one_token_is_refused_clearly(world: SlackWorld) -> None:
    _, other = make_tenant(world.runtime)
    with system_scope(world.runtime.factory) as session:
        session.execute(update(Inbox).where(Inbox.id == other.id).values(slack_channel_id="C0OTHER"))
    assert world.post_form("/slack/commands", command_body(text="mine", user_id=AGENT, channel_id="D0DIRECT")) == 200
    assert "several Threadline tenants" in _ephemeral_to(world, AGENT)


def test_a_dm_command_acts_for_the_tenant_of_the_workspace_installation(oauth: OAuthWorld) -> None:  # noqa: F811
    oauth.install(oauth.a, team_id="T0AAA", token="xoxb-aaa")
    oauth.install(oauth.b, team_id="T0BBB", token="xoxb-bbb")
    answer = oauth.post("/slack/commands", command_body(text="mine", user_id=AGENT, channel_id="D0DM", team_id="T0BBB"))
    assert answer.status_code == 200
    wait_until(lambda: oauth.fake.calls_to("chat.postEphemeral"))
    with system_scope(oauth.runtime.factory) as session:
        tenants = set(session.execute(select(Agent.tenant_id).where(Agent.slack_user_id == AGENT)).scalars())
    assert tenants == {oauth.b.id}
