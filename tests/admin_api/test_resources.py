"""Tenants, API keys, inboxes (with IMAP), agents and the audit log through the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAccount
from core.tenancy.models import ApiKey, ApiKeyScope
from tests.admin_api.conftest import Headers
from tests.conftest import make_tenant

KeyFor = Callable[..., Headers]


def _bearer(secret: str) -> Headers:
    return {"Authorization": f"Bearer {secret}"}


def test_a_platform_key_creates_a_tenant_whose_key_works_until_the_tenant_is_disabled(
    api: TestClient, key_for: KeyFor
) -> None:
    platform = key_for(None, ApiKeyScope.PLATFORM)
    created = api.post("/api/v1/tenants", headers=platform, json={"name": "Acme Corp"})
    tenant_key = _bearer(created.json()["admin_key"]["secret"])
    tenant_id = created.json()["tenant"]["id"]
    before = api.get("/api/v1/inboxes", headers=tenant_key).status_code
    disabled = api.patch(f"/api/v1/tenants/{tenant_id}", headers=platform, json={"disabled": True})
    after = api.get("/api/v1/inboxes", headers=tenant_key).status_code
    assert (created.status_code, created.json()["tenant"]["slug"], before, disabled.status_code, after) == (
        201, "acme-corp", 200, 200, 401)
    assert api.patch(f"/api/v1/tenants/{tenant_id}", headers=platform, json={"disabled": False}).status_code == 200
    assert api.get("/api/v1/inboxes", headers=tenant_key).status_code == 200


def test_a_duplicate_tenant_slug_is_409(api: TestClient, key_for: KeyFor) -> None:
    platform = key_for(None, ApiKeyScope.PLATFORM)
    api.post("/api/v1/tenants", headers=platform, json={"name": "Acme", "slug": "acme"})
    assert api.post("/api/v1/tenants", headers=platform, json={"name": "Acme 2", "slug": "acme"}).status_code == 409


def test_a_platform_key_replaces_a_lost_tenant_key(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    res = api.post(f"/api/v1/tenants/{a.id}/api-keys", headers=key_for(None, ApiKeyScope.PLATFORM),
                   json={"name": "replacement"})
    assert api.get("/api/v1/inboxes", headers=_bearer(res.json()["secret"])).status_code == 200


def test_a_created_key_is_shown_once_and_listed_without_its_secret(api: TestClient, runtime: Runtime,
                                                                   key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    created = api.post("/api/v1/api-keys", headers=admin, json={"name": "reporting", "scope": "read"}).json()
    listed = api.get("/api/v1/api-keys", headers=admin).json()["items"]
    mine = next(k for k in listed if k["id"] == created["id"])
    assert (created["secret"].startswith(f"tl_{created['prefix']}_"), mine["scope"], mine["status"],
            created["secret"] in json.dumps(listed)) == (True, "read", "active", False)
    assert set(mine) == {"id", "name", "prefix", "scope", "status", "created_at", "last_used_at", "expires_at",
                         "revoked_at"}


def test_rotating_a_key_makes_the_old_one_401_and_the_new_one_work(api: TestClient, runtime: Runtime,
                                                                   key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    old = api.post("/api/v1/api-keys", headers=admin, json={"name": "deploy"}).json()
    new = api.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=admin, json={}).json()
    assert (api.get("/api/v1/inboxes", headers=_bearer(old["secret"])).status_code,
            api.get("/api/v1/inboxes", headers=_bearer(new["secret"])).status_code, new["name"]) == (401, 200, "deploy")


def test_rotating_with_a_grace_period_keeps_the_old_key_working_until_then(api: TestClient, runtime: Runtime,
                                                                           key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    old = api.post("/api/v1/api-keys", headers=admin, json={"name": "deploy"}).json()
    api.post(f"/api/v1/api-keys/{old['id']}/rotate", headers=admin, json={"grace_seconds": 3600})
    shown = api.get(f"/api/v1/api-keys/{old['id']}", headers=admin).json()
    assert api.get("/api/v1/inboxes", headers=_bearer(old["secret"])).status_code == 200
    assert shown["expires_at"] is not None and shown["status"] == "active"


def test_a_revoked_or_expired_key_is_401(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    revoked = api.post("/api/v1/api-keys", headers=admin, json={"name": "r"}).json()
    expiring = api.post("/api/v1/api-keys", headers=admin, json={"name": "e"}).json()
    assert api.delete(f"/api/v1/api-keys/{revoked['id']}", headers=admin).json()["status"] == "revoked"
    with system_scope(runtime.factory) as session:
        session.execute(update(ApiKey).where(ApiKey.prefix == expiring["prefix"])
                        .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    assert [api.get("/api/v1/inboxes", headers=_bearer(k["secret"])).status_code for k in (revoked, expiring)] == [
        401, 401]


def test_using_a_key_records_last_used_at(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    created = api.post("/api/v1/api-keys", headers=admin, json={"name": "u"}).json()
    api.get("/api/v1/inboxes", headers=_bearer(created["secret"]))
    assert api.get(f"/api/v1/api-keys/{created['id']}", headers=admin).json()["last_used_at"] is not None


def test_an_inbox_gets_reply_mode_acknowledgement_and_a_slack_channel(api: TestClient, runtime: Runtime,
                                                                      key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    inbox = api.post("/api/v1/inboxes", headers=admin, json={"address": "Help@Acme.test", "name": "Help"}).json()
    res = api.patch(f"/api/v1/inboxes/{inbox['id']}", headers=admin, json={
        "reply_mode": "explicit", "send_acknowledgement": True, "acknowledgement_text": "We got it.",
        "slack_channel_id": "C0123"})
    body = res.json()
    assert (inbox["address"], body["reply_mode"], body["send_acknowledgement"], body["acknowledgement_text"],
            body["slack_channel_id"], body["name"]) == ("help@acme.test", "explicit", True, "We got it.", "C0123",
                                                        "Help")
    unbound = api.patch(f"/api/v1/inboxes/{inbox['id']}", headers=admin, json={"slack_channel_id": None}).json()
    assert unbound["slack_channel_id"] is None


def test_an_imap_password_is_stored_encrypted_and_never_returned(api: TestClient, runtime: Runtime,
                                                                 key_for: KeyFor) -> None:
    a, inbox = make_tenant(runtime)
    admin = key_for(a.id)
    password = "s3cret-imap-Passw0rd"
    put = api.put(f"/api/v1/inboxes/{inbox.id}/imap", headers=admin, json={
        "host": "imap.acme.test", "username": "help@acme.test", "password": password})
    responses = [put, api.get(f"/api/v1/inboxes/{inbox.id}/imap", headers=admin),
                 api.get("/api/v1/inboxes", headers=admin), api.get("/api/v1/audit", headers=admin),
                 api.put(f"/api/v1/inboxes/{inbox.id}/imap", headers=admin, json={
                     "host": "imap.acme.test", "username": "help@acme.test", "port": 0, "password": password})]
    with system_scope(runtime.factory) as session:
        stored = session.query(ImapAccount).one().password_encrypted
    assert (put.status_code, put.json()["port"], put.json()["password_set"], responses[-1].status_code) == (
        200, 993, True, 422)
    assert [password in r.text for r in responses] == [False] * len(responses)
    assert password not in stored


def test_an_imap_account_without_a_password_is_refused_at_creation(api: TestClient, runtime: Runtime,
                                                                   key_for: KeyFor) -> None:
    a, inbox = make_tenant(runtime)
    res = api.put(f"/api/v1/inboxes/{inbox.id}/imap", headers=key_for(a.id),
                  json={"host": "imap.acme.test", "username": "u"})
    assert (res.status_code, res.json()["type"]) == (422, "https://threadline.dev/problems/invalid-input")


def test_agents_are_created_by_email_given_roles_and_deactivated(api: TestClient, runtime: Runtime,
                                                                 key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    agent = api.post("/api/v1/agents", headers=admin, json={"email": "Ann@Acme.test"}).json()
    duplicate = api.post("/api/v1/agents", headers=admin, json={"email": "ann@acme.test"})
    role = api.patch(f"/api/v1/agents/{agent['id']}", headers=admin, json={"role": "read-only"}).json()
    gone = api.delete(f"/api/v1/agents/{agent['id']}", headers=admin).json()
    active = api.get("/api/v1/agents?active=true", headers=admin).json()["items"]
    assert (agent["email"], agent["name"], agent["slack_user_id"], duplicate.status_code, role["role"],
            gone["active"], active) == ("ann@acme.test", "Ann", None, 409, "read-only", False, [])


def test_admin_actions_are_audited_with_actor_target_ip_and_request_id(api: TestClient, runtime: Runtime,
                                                                      key_for: KeyFor) -> None:
    a, inbox = make_tenant(runtime)
    admin = key_for(a.id)
    prefix = api.get("/api/v1/api-keys", headers=admin).json()["items"][0]["prefix"]
    api.patch(f"/api/v1/inboxes/{inbox.id}", headers={**admin, "X-Request-ID": "audit-req-0001"},
              json={"reply_mode": "explicit"})
    api.post("/api/v1/agents", headers=admin, json={"email": "bo@acme.test"})
    entries = api.get("/api/v1/audit?action=inbox.", headers=admin).json()["items"]
    assert [(e["action"], e["target"], e["data"], e["actor"], e["client_ip"], e["request_id"]) for e in entries] == [
        ("inbox.updated", f"inbox:{inbox.id}", {"reply_mode": "explicit"}, f"key:{prefix} (admin test key)",
         "testclient", "audit-req-0001")]
    everything = api.get(f"/api/v1/audit?actor=key:{prefix}&limit=1", headers=admin)
    assert (everything.json()["items"][0]["action"], "link" in everything.headers) == ("agent.created", True)


def test_the_audit_log_is_read_only_and_filters_by_time(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    api.post("/api/v1/agents", headers=admin, json={"email": "cy@acme.test"})
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert api.get("/api/v1/audit", headers=admin, params={"since": future}).json()["items"] == []
    assert api.post("/api/v1/audit", headers=admin, json={}).status_code == 405
