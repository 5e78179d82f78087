"""A thread post whose answer never came (the post happened; the attempt did not hear, or died
before recording it) is found by its marker on retry, not posted twice."""

from __future__ import annotations

import json

import pytest

from tests.bots.teams.conftest import CHANNEL, TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs


def _customer_writes(world: TeamsWorld) -> None:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id="<once@customer.test>",
                                body="the repository is locked"))


@pytest.mark.parametrize("lost", ["create_conversation", "send"])
def test_a_post_without_an_answer_is_looked_up_on_retry_not_doubled(teams_world: TeamsWorld, lost: str) -> None:
    teams_world.fake.lose_answer_next(lost)
    _customer_writes(teams_world)
    drain_jobs(teams_world.runtime)  # the sync job's post happens, its answer is lost: the job retries later
    drain_jobs(teams_world.runtime, include_delayed=True)
    (thread,) = teams_world.fake.threads(CHANNEL)
    posts = [json.dumps(a) for a in teams_world.fake.thread(thread)]
    assert "#1" in posts[0] and sum("repository is locked" in p for p in posts) == 1  # one card, the message once
    assert teams_world.fake.calls_to("list")  # it was looked up, not posted again


def test_where_activities_cannot_be_listed_the_post_is_made_again_never_lost(teams_world: TeamsWorld) -> None:
    teams_world.fake.lists_activities = False  # as Teams' own Bot Connector
    teams_world.fake.lose_answer_next("send")
    _customer_writes(teams_world)
    drain_jobs(teams_world.runtime)
    drain_jobs(teams_world.runtime, include_delayed=True)
    (thread,) = teams_world.fake.threads(CHANNEL)
    texts = [json.dumps(a) for a in teams_world.fake.thread(thread)[1:]]
    assert sum("repository is locked" in t for t in texts) == 2  # the documented residual: one double, none lost
