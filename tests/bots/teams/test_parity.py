"""What Slack agents have, in Teams: assign by @mention, a team as the access rule, Retry for a
failed message, `inbox set --teams-channel/--teams-team`, customer text shown as itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from sqlalchemy import select, update

from bots.teams.cards import outside
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Agent, Inbox
from core.tickets.models import Ticket
from tests.bots.teams.conftest import AAD_TENANT, BOT, CHANNEL, TeamsWorld
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.cli import run_cli
from tests.support.jobs import drain_jobs

BEA = "29:bea-agent"
BEA_AAD = "b0b00000-0000-4000-8000-000000000002"
TEAM = "19:support-agents@thread.tacv2"


def _bea(world: TeamsWorld) -> None:
    world.fake.members[BEA] = {"name": "Bea Agent", "aadObjectId": BEA_AAD, "email": "bea@acme.test",
                               "userPrincipalName": "bea@acme.test", "tenantId": AAD_TENANT, "userRole": "user"}


def _command(world: TeamsWorld, text: str, *, mentions: tuple[tuple[str, str], ...] = (), user: str = "29:ann-agent",
             aad: str = "a11ce000-0000-4000-8000-000000000001") -> tuple[str, dict[str, Any]]:
    """`@Threadline <text>` as a new channel post by `user`, with `<at>Name</at>` for each (id, name)
    mentioned; a worker handles it. Returns the post's thread and the last activity in it."""
    post_id = str(next(world._ids))
    thread = f"{CHANNEL};messageid={post_id}"
    entities = [{"type": "mention", "text": "<at>Threadline</at>", "mentioned": {"id": BOT, "name": "Threadline"}}]
    entities += [{"type": "mention", "text": f"<at>{name}</at>", "mentioned": {"id": uid, "name": name}}
                 for uid, name in mentions]
    activity = world.activity("message", conversation=thread, activity_id=post_id, user=user, aad=aad,
                              text=f"<at>Threadline</at> {text}", entities=entities)
    assert world.post(activity).status_code == 200
    drain_jobs(world.runtime)
    return thread, world.fake.thread(thread)[-1]


def _assignee(world: TeamsWorld) -> str | None:
    with system_scope(world.runtime.factory) as session:
        ticket = session.execute(select(Ticket)).scalar_one()
        agent = session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
        return agent.teams_user_id if agent else None


def test_assign_to_a_mentioned_colleague_resolves_their_teams_account(teams_world: TeamsWorld) -> None:
    _bea(teams_world)
    deliver(teams_world.runtime, mail(message_id="<c1@customer.test>"))
    drain_jobs(teams_world.runtime)
    _thread, answer = _command(teams_world, "assign 1 <at>Bea Agent</at>", mentions=((BEA, "Bea Agent"),))
    assert (answer["text"], _assignee(teams_world)) == ("Ticket #1 assigned to Bea Agent.", BEA_AAD)


def test_assign_to_a_guest_is_refused_and_changes_nothing(teams_world: TeamsWorld) -> None:
    teams_world.fake.members["29:gus"] = {"name": "Gus", "aadObjectId": "g-1", "tenantId": AAD_TENANT,
                                          "userRole": "guest"}
    deliver(teams_world.runtime, mail(message_id="<c1@customer.test>"))
    drain_jobs(teams_world.runtime)
    _thread, answer = _command(teams_world, "assign 1 <at>Gus</at>", mentions=(("29:gus", "Gus"),))
    assert _assignee(teams_world) is None
    assert "Gus cannot be assigned: guest accounts cannot act" in json.dumps(answer)


def test_a_configured_team_decides_who_acts(teams_world: TeamsWorld) -> None:
    _bea(teams_world)
    teams_world.fake.team_rosters[TEAM] = {BEA}
    with system_scope(teams_world.runtime.factory) as session:
        session.execute(update(Inbox).values(teams_team_id=TEAM))
    deliver(teams_world.runtime, mail(message_id="<c1@customer.test>"))
    drain_jobs(teams_world.runtime)
    _thread, refused = _command(teams_world, "assign 1 me")  # Ann posts in the channel, is not on the team
    assert _assignee(teams_world) is None
    assert f"the Teams team {TEAM} act on these tickets" in json.dumps(refused)
    _thread, answer = _command(teams_world, "assign 1 me", user=BEA, aad=BEA_AAD)
    assert (answer["text"], _assignee(teams_world)) == ("Ticket #1 assigned to Bea Agent.", BEA_AAD)


def test_a_failed_message_offers_retry_and_retry_handles_the_stored_activity(teams_world: TeamsWorld) -> None:
    deliver(teams_world.runtime, mail(message_id="<c1@customer.test>"))
    drain_jobs(teams_world.runtime)
    teams_world.fake.fail_next("send", status=403)  # the command's answer is refused once by the connector
    thread, failed = _command(teams_world, "assign 1 me")
    card = teams_world.fake.card_of(failed)
    assert "something went wrong (reference" in json.dumps(card)
    (retry,) = card["actions"]
    assert (retry["verb"], _assignee(teams_world)) == ("tl_retry_reply", "a11ce000-0000-4000-8000-000000000001")
    teams_world.fake.members[BEA] = {"name": "Bea", "aadObjectId": BEA_AAD, "tenantId": AAD_TENANT}
    someone_else = teams_world.activity("invoke", conversation=thread, user=BEA, aad=BEA_AAD,
                                        name="adaptiveCard/action", value={"action": retry})
    assert "not yours" in teams_world.post(someone_else).json()["value"]
    answer = teams_world.click("tl_retry_reply", retry["data"], thread=thread)
    assert "Retrying" in json.dumps(answer)
    drain_jobs(teams_world.runtime)
    assert teams_world.fake.thread(thread)[-1]["text"] == "Ticket #1 assigned to Ann Agent."


def test_customer_text_cannot_format_or_link_in_a_card(teams_world: TeamsWorld) -> None:
    body = "**urgent** [your bank](https://evil.test) # head\n> quoted\n1. one\n    code"
    deliver(teams_world.runtime, mail(message_id="<c1@customer.test>", body=body))
    drain_jobs(teams_world.runtime)
    post = teams_world.fake.card_of(teams_world.fake.thread(teams_world.thread_id())[1])
    shown = post["body"][1]["text"]
    assert _rendered(shown) == ([], _plain(body))


_MD = MarkdownIt("commonmark")


def _plain(value: str) -> str:
    return " ".join(value.replace("\u00a0", " ").split())


def _rendered(value: str) -> tuple[list[str], str]:
    """What a CommonMark renderer makes of the text: the markup it found (emphasis, links, headings,
    lists, quotes, code, ...) and the words it shows."""
    markup: list[str] = []
    shown: list[str] = []
    for token in _MD.parse(value):
        if token.type == "inline":
            for child in token.children or []:
                if child.type == "text":
                    shown.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    shown.append(" ")
                else:
                    markup.append(child.type)
        elif token.type in ("paragraph_open", "paragraph_close"):
            shown.append(" ")
        else:
            markup.append(token.type)
    return markup, _plain("".join(shown))


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab 1.\n\t*_~#>[]()|!+-={}<&`\\:/")), max_size=80)
       .filter(lambda s: s.strip()))
def test_escaped_outside_text_renders_as_exactly_itself(value: str) -> None:
    assert _rendered(outside(value)) == ([], _plain(value))


def test_escaping_is_linear_on_a_long_line() -> None:
    assert len(outside("[" * 200_000)) == 400_000


def test_inbox_set_binds_a_teams_channel_and_team(runtime: Runtime, tmp_path: Path) -> None:
    _, inbox = make_tenant(runtime, address="help@acme.test")
    res = run_cli("inbox", "set", "help@acme.test", "--teams-channel", CHANNEL, "--teams-team", TEAM, env={
        "DATABASE_URL": runtime.database_url, "THREADLINE_DATA_DIR": str(tmp_path), "THREADLINE_LOG_LEVEL": "WARNING",
        "REDIS_URL": None})
    assert res.returncode == 0, res.stderr
    assert f"teams channel {CHANNEL} (team {TEAM})" in res.stdout
    with system_scope(runtime.factory) as session:
        row = session.get_one(Inbox, inbox.id)
        assert (row.teams_channel_id, row.teams_team_id) == (CHANNEL, TEAM)
