"""A Threadline wired to the fake Bot Connector, a local JWT issuer and an SMTP sink, with one
Teams-bound inbox."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import update

from admin_api.app import create_app
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Inbox
from tests.conftest import make_tenant
from tests.support.fake_teams import FakeTeams
from tests.support.smtp_sink import smtp_sink  # noqa: F401 (fixture)
from tests.support.teams_jwt import TeamsJwtIssuer

APP_ID = "6f2a8e0c-5b1d-4c39-9a57-0d3c2e1f4b6a"
APP_PASSWORD = "teams-test-password"
AAD_TENANT = "0b7c1d2e-3f40-4a5b-8c6d-7e8f9a0b1c2d"
CHANNEL = "19:support0123@thread.tacv2"
AGENT = "29:ann-agent"
AGENT_AAD = "a11ce000-0000-4000-8000-000000000001"
BOT = f"28:{APP_ID}"


@pytest.fixture()
def fake_teams() -> Iterator[FakeTeams]:
    with FakeTeams(app_id=APP_ID, app_password=APP_PASSWORD) as fake:
        fake.members[AGENT] = {"name": "Ann Agent", "aadObjectId": AGENT_AAD, "email": "ann@acme.test",
                               "userPrincipalName": "ann@acme.test", "tenantId": AAD_TENANT, "userRole": "user"}
        yield fake


@pytest.fixture()
def jwt_issuer() -> Iterator[TeamsJwtIssuer]:
    with TeamsJwtIssuer(APP_ID) as issuer:
        yield issuer


@dataclass
class TeamsWorld:
    runtime: Runtime
    fake: FakeTeams
    issuer: TeamsJwtIssuer
    sink: Any
    http: TestClient
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1_800_000_000_001))

    def post(self, activity: dict[str, Any], *, token: str | None = None, auth: bool = True) -> Any:
        headers = {}
        if auth:
            headers["Authorization"] = f"Bearer {token or self.issuer.token(service_url=activity['serviceUrl'])}"
        return self.http.post("/teams/messages", json=activity, headers=headers)

    def activity(self, kind: str, *, conversation: str, activity_id: str | None = None, text: str = "",
                 user: str = AGENT, aad: str | None = AGENT_AAD, **extra: Any) -> dict[str, Any]:
        return {
            "type": kind, "id": activity_id or str(next(self._ids)), "channelId": "msteams",
            "serviceUrl": self.fake.service_url, "from": {"id": user, "aadObjectId": aad, "name": "Ann Agent"},
            "recipient": {"id": BOT, "name": "Threadline"},
            "conversation": {"id": conversation, "conversationType": "channel", "isGroup": True},
            "channelData": {"channel": {"id": CHANNEL}, "team": {"id": "19:team@thread.tacv2"},
                            "tenant": {"id": AAD_TENANT}},
            "text": text, **extra,
        }

    def agent_says(self, text: str, *, thread: str, activity_id: str | None = None, mention: bool = False) -> int:
        body = f"<at>Threadline</at> {text}" if mention else text
        entities = [{"type": "mention", "text": "<at>Threadline</at>", "mentioned": {"id": BOT, "name": "Threadline"}}]
        activity = self.activity("message", conversation=thread, activity_id=activity_id, text=body,
                                 entities=entities if mention else [])
        return int(self.post(activity).status_code)

    def click(self, verb: str, data: dict[str, str], *, thread: str) -> dict[str, Any]:
        activity = self.activity("invoke", conversation=thread, name="adaptiveCard/action",
                                 value={"action": {"type": "Action.Execute", "verb": verb, "data": data},
                                        "trigger": "manual"})
        response = self.post(activity)
        assert response.status_code == 200
        return dict(response.json())

    def thread_id(self) -> str:
        threads = self.fake.threads(CHANNEL)
        assert threads, "no ticket card was posted"
        return threads[-1]


@pytest.fixture()
def teams_world(runtime: Runtime, fake_teams: FakeTeams, jwt_issuer: TeamsJwtIssuer,
                smtp_sink: Any) -> Iterator[TeamsWorld]:  # noqa: F811
    s = runtime.settings
    s.teams_app_id, s.teams_app_password = APP_ID, SecretStr(APP_PASSWORD)
    s.teams_tenant_id = AAD_TENANT
    s.teams_api_url, s.teams_token_url = fake_teams.service_url, fake_teams.token_url
    s.teams_openid_url = jwt_issuer.openid_url
    s.undo_seconds = 0
    s.outbound_smtp_url = SecretStr(smtp_sink.url)
    _, inbox = make_tenant(runtime, address="help@acme.test")
    with system_scope(runtime.factory) as session:
        session.execute(update(Inbox).where(Inbox.id == inbox.id).values(teams_channel_id=CHANNEL))
    with TestClient(create_app(runtime)) as http:
        yield TeamsWorld(runtime, fake_teams, jwt_issuer, smtp_sink, http)
