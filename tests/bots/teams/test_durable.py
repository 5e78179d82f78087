"""Activities are stored before they are answered and handled by a worker; card actions act once;
new threads go through the tenant's regional service URL."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from core.db.session import system_scope
from core.jobs.models import OutboxRow, OutboxStatus
from core.jobs.runner import JobFailed, RunResult, run_outbox_job
from core.surfaces.models import TeamsServiceUrl
from core.tenancy.models import Inbox, ReplyMode
from core.tickets.models import DeliveryState, Direction, Message, SurfaceAnchor
from tests.bots.teams.conftest import AAD_TENANT, CHANNEL, TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs


def _outbound(world: TeamsWorld) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction == Direction.OUTBOUND)).scalars())


def _activity_jobs(world: TeamsWorld) -> list[OutboxRow]:
    with system_scope(world.runtime.factory) as session:
        stmt = select(OutboxRow).where(OutboxRow.job == "teams.activity").order_by(OutboxRow.id)
        return list(session.execute(stmt).scalars())


def _customer_writes(world: TeamsWorld, n: int = 1) -> str:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id=f"<cust{n}@customer.test>",
                                subject=f"Backup {n} fails"))
    drain_jobs(world.runtime)
    return world.thread_id()


def test_the_answer_comes_before_any_worker_and_the_stored_activity_is_handled_once(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world)
    for _ in range(3):  # Teams re-sends what it thinks was not answered in time
        assert teams_world.agent_says("Please run restic unlock.", thread=thread, activity_id="1800000000777") == 200
    (job,) = _activity_jobs(teams_world)  # stored once, committed with the answer; no worker ran yet
    assert (job.status, job.payload["activity"]["id"], _outbound(teams_world)) == (
        OutboxStatus.PENDING, "1800000000777", [])
    drain_jobs(teams_world.runtime)  # a worker comes up
    teams_world.sink.wait_for(1)
    drain_jobs(teams_world.runtime)
    assert (len(_outbound(teams_world)), len(teams_world.sink.mails)) == (1, 1)


def test_a_card_action_delivered_three_times_acts_once_and_answers_each_time(teams_world: TeamsWorld) -> None:
    with system_scope(teams_world.runtime.factory) as session:
        session.execute(Inbox.__table__.update().values(reply_mode=ReplyMode.EXPLICIT.value))
    thread = _customer_writes(teams_world)
    with system_scope(teams_world.runtime.factory) as session:
        ticket_id = str(session.execute(select(Message.ticket_id)).scalars().first())
    action = {"action": {"type": "Action.Execute", "verb": "tl_reply_to_customer",
                         "data": {"ticket_id": ticket_id, "reply": "Fixed now."}}, "trigger": "manual"}
    invoke = teams_world.activity("invoke", conversation=thread, activity_id="1800000000888",
                                  name="adaptiveCard/action", value=action)
    answers: list[dict[str, Any]] = [teams_world.post(invoke).json() for _ in range(3)]
    assert all(a["type"] == "application/vnd.microsoft.card.adaptive" for a in answers)
    drain_jobs(teams_world.runtime, include_delayed=True)
    (sent,) = teams_world.sink.wait_for(1)
    assert "Fixed now." in sent.message.get_body(("plain",)).get_content()
    assert len(_outbound(teams_world)) == 1


def test_a_refused_card_action_is_answered_with_the_reason(teams_world: TeamsWorld) -> None:
    thread = _customer_writes(teams_world)
    answer = teams_world.click("tl_priority", {"ticket_id": "not-a-uuid"}, thread=thread)
    assert answer["value"].startswith("⚠️ this card is out of date")


def _install(world: TeamsWorld, service_url: str) -> int:
    """The conversationUpdate Teams sends when the app is added to a team (from its region)."""
    activity = world.activity("conversationUpdate", conversation=CHANNEL)
    activity.update(serviceUrl=service_url, membersAdded=[{"id": activity["recipient"]["id"]}])
    return int(world.post(activity).status_code)


def test_new_threads_go_through_the_service_url_of_the_tenants_region(teams_world: TeamsWorld) -> None:
    regional = teams_world.fake.service_url + "emea/"
    assert _install(teams_world, regional) == 200
    thread = _customer_writes(teams_world)
    (create,) = teams_world.fake.calls_to("create_conversation")
    assert create.path.startswith("/emea/v3/conversations")
    with system_scope(teams_world.runtime.factory) as session:
        anchor = session.execute(select(SurfaceAnchor)).scalar_one()
        stored = session.get_one(TeamsServiceUrl, AAD_TENANT).service_url
    assert (anchor.service_url, stored, anchor.thread_ref) == (regional, regional, thread)
    teams_world.agent_says("note: seen", thread=thread)
    drain_jobs(teams_world.runtime)
    assert all(c.path.startswith("/emea/") for c in teams_world.fake.calls if c.op in ("send", "update"))


def test_a_service_url_outside_the_allow_list_is_not_remembered(teams_world: TeamsWorld) -> None:
    assert _install(teams_world, "https://smba.example.net/emea/") == 200
    _customer_writes(teams_world)
    (create,) = teams_world.fake.calls_to("create_conversation")
    assert create.path.startswith("/v3/conversations")
    with system_scope(teams_world.runtime.factory) as session:
        assert session.get(TeamsServiceUrl, AAD_TENANT) is None


def test_a_truncated_customer_message_offers_the_full_original_in_a_dialog(teams_world: TeamsWorld) -> None:
    body = "start " + "lorem ipsum " * 400 + "[the end](https://evil.test)"
    deliver(teams_world.runtime, mail(sender="bob@customer.test", message_id="<long@customer.test>", body=body))
    drain_jobs(teams_world.runtime)
    thread = teams_world.thread_id()
    post = teams_world.fake.card_of(teams_world.fake.thread(thread)[1])
    (button,) = post["actions"]
    assert button["data"]["msteams"] == {"type": "task/fetch"}
    fetch = teams_world.activity("invoke", conversation=thread, name="task/fetch",
                                 value={"data": button["data"], "context": {"theme": "default"}})
    dialog = teams_world.post(fetch).json()["task"]["value"]
    shown = json.dumps(dialog["card"]["content"])
    assert dialog["title"].startswith("From ")
    assert "start lorem ipsum" in shown and "\\\\[the end\\\\]\\\\(https://evil.test\\\\)" in shown


def test_a_delete_that_overtakes_its_message_waits_for_it(teams_world: TeamsWorld) -> None:
    teams_world.runtime.settings.undo_seconds = 30
    thread = _customer_writes(teams_world)
    teams_world.agent_says("oops, wrong ticket", thread=thread, activity_id="1800000000901")
    teams_world.post(teams_world.activity("messageDelete", conversation=thread, activity_id="1800000000901"))
    message_job, delete_job = (row.id for row in _activity_jobs(teams_world))
    rt = teams_world.runtime
    with pytest.raises(JobFailed):  # workers ran them out of order: the delete is retried, not dropped
        run_outbox_job(delete_job, settings=rt.settings, factory=rt.factory, registry=rt.registry)
    assert run_outbox_job(message_job, settings=rt.settings, factory=rt.factory, registry=rt.registry) is RunResult.DONE
    drain_jobs(rt, include_delayed=True)
    (reply,) = _outbound(teams_world)
    assert (reply.delivery_state, teams_world.sink.mails) == (DeliveryState.CANCELLED, [])
