"""Requests to /teams/messages without a valid Bot Framework JWT are refused with 401, and nothing
reaches the core (no message, no seen-event row)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from core.db.session import system_scope
from core.surfaces.models import SeenEvent
from core.tickets.models import Message
from tests.bots.teams.conftest import TeamsWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.teams_jwt import TeamsJwtIssuer

Forge = Callable[[TeamsJwtIssuer, str], str | None]

REFUSED: dict[str, Forge] = {
    "no token": lambda issuer, url: None,
    "wrong audience": lambda issuer, url: issuer.token(service_url=url, audience="someone-elses-bot"),
    "wrong issuer": lambda issuer, url: issuer.token(service_url=url, issuer="https://sts.windows.net/evil/"),
    "expired": lambda issuer, url: issuer.token(service_url=url, expires_in=-600),
    "serviceurl mismatch": lambda issuer, url: issuer.token(service_url="https://smba.trafficmanager.net/evil/"),
    "key not in the JWKS": lambda issuer, url: issuer.token(service_url=url, signed_by_other_key=True),
    "not a JWT": lambda issuer, url: "not-a-token",
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_request_without_a_valid_token_is_refused_and_reaches_nothing(teams_world: TeamsWorld, case: str) -> None:
    deliver(teams_world.runtime, mail(message_id="<cust1@customer.test>"))
    drain_jobs(teams_world.runtime)
    thread = teams_world.thread_id()
    activity = teams_world.activity("message", conversation=thread, text="forged reply")
    token = REFUSED[case](teams_world.issuer, activity["serviceUrl"])
    response = teams_world.post(activity, token=token, auth=token is not None)
    with system_scope(teams_world.runtime.factory) as session:
        seen = session.execute(select(func.count()).select_from(SeenEvent)).scalar_one()
        messages = session.execute(select(func.count()).select_from(Message)).scalar_one()
    assert (response.status_code, seen, messages) == (401, 0, 1)


def test_a_token_expired_within_the_clock_skew_is_accepted(teams_world: TeamsWorld) -> None:
    deliver(teams_world.runtime, mail(message_id="<cust1@customer.test>"))
    drain_jobs(teams_world.runtime)
    activity = teams_world.activity("message", conversation=teams_world.thread_id(), text="note: fine")
    token = teams_world.issuer.token(service_url=activity["serviceUrl"], expires_in=-10)
    assert teams_world.post(activity, token=token).status_code == 200


def test_a_key_not_endorsed_for_the_activitys_channel_is_refused(teams_world: TeamsWorld) -> None:
    deliver(teams_world.runtime, mail(message_id="<cust1@customer.test>"))
    drain_jobs(teams_world.runtime)
    activity = {**teams_world.activity("message", conversation=teams_world.thread_id(), text="hi"),
                "channelId": "webchat"}  # the test key is endorsed for msteams only
    assert teams_world.post(activity).status_code == 401
