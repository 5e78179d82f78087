"""Many workspaces over OAuth: install link → Slack consent → encrypted token bound to the tenant,
and every Slack call for a tenant made with its own workspace's bot token."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from admin_api.app import create_app
from bots.slack.installations import disconnect, make_install_token
from bots.slack.oauth import AUTHORIZE_URL, BOT_SCOPES, STATE_COOKIE
from bots.slack.tasks import REACT_JOB
from core.crypto import SecretBox
from core.db.session import system_scope
from core.jobs.models import OutboxRow
from core.runtime import Runtime
from core.surfaces.models import SurfaceInstallation, SurfaceOAuthState
from core.tenancy.models import Inbox
from core.tickets.models import Direction, Message, Ticket
from tests.bots.slack.conftest import AGENT, SECRET, wait_until
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.cli import run_cli
from tests.support.fake_slack import FakeSlack
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import (
    block_action,
    command_body,
    event_body,
    interaction_body,
    message_event,
    sign,
    view_submission,
)

ROOT = Path(__file__).resolve().parents[3]
PUBLIC_URL = "https://threadline.example"
CLIENT_ID = "1111.2222"


class OAuthFakeSlack(FakeSlack):
    """The fake plus oauth.v2.access: each granted code installs one workspace with its own bot token."""

    def __init__(self) -> None:
        super().__init__()
        self.grants: dict[str, dict[str, Any]] = {}

    def grant(self, code: str, *, team_id: str, token: str) -> None:
        self.tokens.add(token)
        self.token_teams[token] = team_id
        self.grants[code] = {
            "access_token": token, "token_type": "bot", "scope": ",".join(BOT_SCOPES), "bot_user_id": "U0BOT",
            "app_id": "A0APP", "team": {"id": team_id, "name": f"Team {team_id}"}, "enterprise": None,
            "authed_user": {"id": "U0ADMIN"}, "is_enterprise_install": False,
        }

    def _dispatch(self, method: str, args: dict[str, Any], token: str, bad_body: bool) -> Any:
        if method != "oauth.v2.access":  # client id/secret come as Basic auth: no bot token to check
            return super()._dispatch(method, args, token, bad_body)
        answer = self.grants.pop(str(args.get("code")), None)
        return 200, {}, ({"ok": True, **answer} if answer else {"ok": False, "error": "invalid_code"})


@dataclass
class Bound:
    id: uuid.UUID
    slug: str
    channel: str
    address: str


@dataclass
class OAuthWorld:
    runtime: Runtime
    fake: OAuthFakeSlack
    http: TestClient
    a: Bound
    b: Bound

    def start(self, tenant: Bound) -> httpx.Response:
        token = make_install_token(self.runtime.settings, tenant_id=tenant.id)
        return self.http.get("/slack/install", params={"t": token}, follow_redirects=False)

    def finish(self, state: str, code: str) -> httpx.Response:
        return self.http.get("/slack/oauth_redirect", params={"code": code, "state": state}, follow_redirects=False)

    def install(self, tenant: Bound, *, team_id: str, token: str) -> httpx.Response:
        code = f"code-{team_id}-{uuid.uuid4().hex[:6]}"
        self.fake.grant(code, team_id=team_id, token=token)
        return self.finish(_state(self.start(tenant)), code)

    def post(self, path: str, body: bytes) -> httpx.Response:
        return self.http.post(path, content=body, headers=sign(SECRET, body))


def _state(redirect: httpx.Response) -> str:
    assert redirect.status_code == 302, redirect.text
    return parse_qs(urlsplit(redirect.headers["location"]).query)["state"][0]


def _tenant(runtime: Runtime, channel: str, address: str) -> Bound:
    tenant, inbox = make_tenant(runtime, address=address)
    with system_scope(runtime.factory) as session:
        session.execute(update(Inbox).where(Inbox.id == inbox.id).values(slack_channel_id=channel))
    return Bound(tenant.id, tenant.slug, channel, address)


@pytest.fixture()
def oauth(runtime: Runtime) -> Iterator[OAuthWorld]:
    with OAuthFakeSlack() as fake:
        fake.users[AGENT] = {"real_name": "Ann Agent", "profile": {"real_name": "Ann Agent", "email": "ann@acme.test"}}
        s = runtime.settings
        s.slack_bot_token = None
        s.slack_signing_secret = SecretStr(SECRET)
        s.slack_client_id, s.slack_client_secret = CLIENT_ID, SecretStr("oauth-client-secret")
        s.slack_api_url, s.public_url = fake.api_url, PUBLIC_URL
        a = _tenant(runtime, "C0AAA", "help@a.test")
        b = _tenant(runtime, "C0BBB", "help@b.test")
        with TestClient(create_app(runtime), base_url="https://testserver") as http:
            yield OAuthWorld(runtime, fake, http, a, b)


def _installations(world: OAuthWorld) -> list[SurfaceInstallation]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(SurfaceInstallation).order_by(SurfaceInstallation.installed_at)).scalars())


def test_the_install_link_redirects_to_slacks_consent_page_with_a_state_bound_to_the_tenant(oauth: OAuthWorld) -> None:
    location = urlsplit(oauth.start(oauth.a).headers["location"])
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    with system_scope(oauth.runtime.factory) as session:
        bound = session.get_one(SurfaceOAuthState, query["state"]).tenant_id
    assert f"{location.scheme}://{location.netloc}{location.path}" == AUTHORIZE_URL
    assert (query["client_id"], query["redirect_uri"], bound) == (CLIENT_ID, f"{PUBLIC_URL}/slack/oauth_redirect",
                                                                  oauth.a.id)
    manifest = yaml.safe_load((ROOT / "bots" / "slack" / "manifest.yaml").read_text())
    assert query["scope"].split(",") == manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)


def test_the_redirect_stores_the_token_encrypted_and_bound_to_the_tenant(oauth: OAuthWorld) -> None:
    answer = oauth.install(oauth.a, team_id="T0AAA", token="xoxb-aaa-secret-token")
    (row,) = _installations(oauth)
    with system_scope(oauth.runtime.factory) as session:
        raw = session.execute(text("SELECT row_to_json(i)::text FROM surface_installations i")).scalar_one()
    assert answer.status_code == 200 and "Threadline is installed" in answer.text
    assert (row.tenant_id, row.workspace_id, row.bot_user_id, row.bot_id, row.installer_user_id) == (
        oauth.a.id, "T0AAA", "U0BOT", "B0BOT", "U0ADMIN")
    assert "xoxb-aaa-secret-token" not in raw
    (exchange,) = oauth.fake.calls_to("oauth.v2.access")
    assert exchange.args["redirect_uri"] == f"{PUBLIC_URL}/slack/oauth_redirect"
    assert SecretBox.from_settings(oauth.runtime.settings).decrypt(row.bot_token_encrypted) == "xoxb-aaa-secret-token"


def test_a_state_is_used_once(oauth: OAuthWorld) -> None:
    state = _state(oauth.start(oauth.a))
    oauth.fake.grant("code-1", team_id="T0AAA", token="xoxb-aaa")
    oauth.fake.grant("code-2", team_id="T0AAA", token="xoxb-aaa")
    assert oauth.finish(state, "code-1").status_code == 200
    oauth.http.cookies.set(STATE_COOKIE, state, domain="testserver.local", path="/slack")
    again = oauth.finish(state, "code-2")
    assert (again.status_code, "already used" in again.text) == (400, True)


def test_forged_altered_and_expired_install_links_are_refused(oauth: OAuthWorld) -> None:
    s = oauth.runtime.settings
    expired = make_install_token(s, tenant_id=oauth.a.id, now=datetime.now(UTC) - timedelta(hours=2))
    other_key = SecretBox.from_material("another-deployments-key-0123")
    forged = other_key.encrypt(f"slack-install:{oauth.a.id}:9999999999")
    a_stored_secret = SecretBox.from_settings(s).encrypt("xoxb-a-token-read-from-the-database")
    altered = make_install_token(s, tenant_id=oauth.a.id)[:-6] + "AAAA=="
    for token in ("", "garbage", forged, a_stored_secret, altered, expired):
        answer = oauth.http.get("/slack/install", params={"t": token}, follow_redirects=False)
        assert (answer.status_code, "install link" in answer.text) == (400, True), token
    with system_scope(oauth.runtime.factory) as session:
        assert session.execute(select(SurfaceOAuthState)).first() is None


def test_a_redirect_without_the_browsers_state_cookie_is_refused(oauth: OAuthWorld) -> None:
    state = _state(oauth.start(oauth.a))
    oauth.http.cookies.clear()
    oauth.fake.grant("code-1", team_id="T0AAA", token="xoxb-aaa")
    assert oauth.finish(state, "code-1").status_code == 400
    assert _installations(oauth) == []


def test_a_workspace_moves_to_another_tenant_only_after_a_disconnect(oauth: OAuthWorld) -> None:
    oauth.install(oauth.a, team_id="T0AAA", token="xoxb-aaa")
    answer = oauth.install(oauth.b, team_id="T0AAA", token="xoxb-aaa")
    assert (answer.status_code, "another Threadline tenant" in answer.text) == (400, True)
    assert [(r.tenant_id, r.revoked_at) for r in _installations(oauth)] == [(oauth.a.id, None)]
    assert disconnect(oauth.runtime.factory, tenant_id=oauth.a.id) == ["T0AAA"]
    assert oauth.install(oauth.b, team_id="T0AAA", token="xoxb-aaa").status_code == 200
    assert [(r.tenant_id, r.revoked_at) for r in _installations(oauth)] == [(oauth.b.id, None)]


def test_each_tenants_threads_use_its_own_workspaces_token(oauth: OAuthWorld) -> None:
    oauth.install(oauth.a, team_id="T0AAA", token="xoxb-aaa")
    oauth.install(oauth.b, team_id="T0BBB", token="xoxb-bbb")
    for tenant in (oauth.a, oauth.b):
        deliver(oauth.runtime, mail(to=tenant.address, message_id=f"<{tenant.slug}@customer.test>"), to=tenant.address)
    drain_jobs(oauth.runtime)
    posts = {(c.args["channel"], c.token) for c in oauth.fake.calls_to("chat.postMessage")}
    assert posts == {("C0AAA", "xoxb-aaa"), ("C0BBB", "xoxb-bbb")}

    # An agent's note in workspace A: its author looked up with A's bot, the reaction made with A's token.
    card_ts = next(m["ts"] for m in oauth.fake.messages(channel="C0AAA") if not m.get("thread_ts"))
    event = message_event("C0AAA", AGENT, "note: checked the logs", "1700000200.000001", thread_ts=card_ts)
    assert oauth.post("/slack/events", event_body(event, "EvA1", team_id="T0AAA")).status_code == 200
    wait_until(lambda: _queued(oauth, REACT_JOB))
    drain_jobs(oauth.runtime)
    assert ("C0AAA", "1700000200.000001", "memo") in oauth.fake.reactions
    used = {(c.args.get("channel") or c.method, c.token) for c in oauth.fake.calls
            if c.method not in {"oauth.v2.access", "auth.test"}}
    assert used == {("C0AAA", "xoxb-aaa"), ("C0BBB", "xoxb-bbb"), ("users.info", "xoxb-aaa")}


def _queued(world: OAuthWorld, job: str) -> bool:
    with system_scope(world.runtime.factory) as session:
        return session.execute(select(OutboxRow.id).where(OutboxRow.job == job)).first() is not None


def test_a_workspace_cannot_act_in_another_tenants_channel(oauth: OAuthWorld) -> None:
    oauth.install(oauth.a, team_id="T0AAA", token="xoxb-aaa")
    oauth.install(oauth.b, team_id="T0BBB", token="xoxb-bbb")
    from_b = command_body(text="mine", user_id=AGENT, channel_id="C0AAA", team_id="T0BBB")
    answer = oauth.post("/slack/commands", from_b)
    assert (answer.status_code, "another Threadline tenant" in answer.text) == (200, True)
    assert oauth.fake.calls_to("users.info") == []


def test_the_cli_prints_an_install_link_for_the_tenant(oauth: OAuthWorld, database_url: str) -> None:
    s = oauth.runtime.settings
    out = run_cli("slack", "install-link", "--tenant", oauth.b.slug, env={
        "REDIS_URL": None, "THREADLINE_SECRET_KEY": None, "SLACK_BOT_TOKEN": None, "DATABASE_URL": database_url,
        "THREADLINE_DATA_DIR": str(s.data_dir), "THREADLINE_LOG_LEVEL": "WARNING", "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": "oauth-client-secret", "THREADLINE_PUBLIC_URL": PUBLIC_URL})
    assert out.returncode == 0, out.stderr
    link = urlsplit(out.stdout.strip())
    assert f"{link.scheme}://{link.netloc}{link.path}" == f"{PUBLIC_URL}/slack/install"
    redirect = oauth.http.get(f"{link.path}?{link.query}", follow_redirects=False)
    with system_scope(oauth.runtime.factory) as session:
        assert session.get_one(SurfaceOAuthState, _state(redirect)).tenant_id == oauth.b.id


def test_a_workspace_outside_enterprise_grid_is_still_stored_once(oauth: OAuthWorld) -> None:
    row = {"surface": "slack", "workspace_id": "T0DUP", "enterprise_id": None, "bot_token_encrypted": "x",
           "bot_user_id": "U0BOT", "scopes": ""}
    with pytest.raises(IntegrityError), system_scope(oauth.runtime.factory) as session:
        for tenant in (oauth.a, oauth.b):
            session.add(SurfaceInstallation(tenant_id=tenant.id, **row))
            session.flush()


def test_the_reply_modal_works_when_several_tenants_have_slack_channels(oauth: OAuthWorld) -> None:
    oauth.install(oauth.a, team_id="T0AAA", token="xoxb-aaa")
    deliver(oauth.runtime, mail(to=oauth.a.address), to=oauth.a.address)
    drain_jobs(oauth.runtime)
    card_ts = next(m["ts"] for m in oauth.fake.messages(channel="C0AAA") if not m.get("thread_ts"))
    with system_scope(oauth.runtime.factory) as session:
        ticket_id = session.execute(select(Ticket.id)).scalar_one()
    click = block_action("tl_reply_to_customer", str(ticket_id), AGENT, "C0AAA", card_ts, team_id="T0AAA")
    oauth.post("/slack/interactions", interaction_body(click))
    (opened,) = wait_until(lambda: oauth.fake.calls_to("views.open"))
    meta = opened.args["view"]["private_metadata"]
    submit = view_submission("tl_reply_modal", {"reply": {"text": {"type": "plain_text_input", "value": "Fixed."}}},
                             AGENT, private_metadata=meta, team_id="T0AAA")
    oauth.post("/slack/interactions", interaction_body(submit))
    with system_scope(oauth.runtime.factory) as session:
        wait_until(lambda: session.execute(select(Message.body_text).where(
            Message.direction == Direction.OUTBOUND)).scalars().all() == ["Fixed."])
    assert opened.token == "xoxb-aaa"
