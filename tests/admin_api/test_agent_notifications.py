"""GET/PUT /api/v1/agents/{id}/notifications: the agent's notification mail preferences (issue 16)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from core.runtime import Runtime
from tests.conftest import make_tenant

KeyFor = Callable[..., dict[str, str]]
ALL_ON = {"new_tickets": True, "assigned": True, "customer_replies": True, "drafts": True}


def test_preferences_default_then_change_with_etag_and_audit(api: TestClient, runtime: Runtime,
                                                              key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    admin = key_for(a.id)
    agent = api.post("/api/v1/agents", headers=admin, json={"email": "ann@acme.test"}).json()
    url = f"/api/v1/agents/{agent['id']}/notifications"
    first = api.get(url, headers=admin)
    assert first.json() == {"new_tickets": False, "assigned": True, "customer_replies": True, "drafts": True}
    stale = first.headers["etag"]
    put = api.put(url, headers={**admin, "If-Match": stale}, json=ALL_ON)
    again = api.put(url, headers={**admin, "If-Match": stale}, json={**ALL_ON, "drafts": False})
    shown = api.get(url, headers=admin)
    assert (put.status_code, put.json(), put.headers["etag"] == shown.headers["etag"]) == (200, ALL_ON, True)
    assert (again.status_code, again.headers["content-type"]) == (412, "application/problem+json")
    assert shown.json() == ALL_ON
    audit = api.get("/api/v1/audit?action=agent.notifications", headers=admin).json()["items"]
    assert [(e["target"], e["data"]) for e in audit] == [("agent:ann@acme.test", {"new_tickets": True})]


def test_bad_bodies_unknown_agents_and_other_tenants_are_problems(api: TestClient, runtime: Runtime,
                                                                  key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    agent = api.post("/api/v1/agents", headers=key_for(a.id), json={"email": "ann@acme.test"}).json()
    url = f"/api/v1/agents/{agent['id']}/notifications"
    partial = api.put(url, headers=key_for(a.id), json={"assigned": False})
    extra = api.put(url, headers=key_for(a.id), json={**ALL_ON, "sms": True})
    other_tenant = api.get(url, headers=key_for(b.id))
    unknown = api.get("/api/v1/agents/00000000-0000-0000-0000-000000000000/notifications", headers=key_for(a.id))
    assert [r.status_code for r in (partial, extra, other_tenant, unknown)] == [422, 422, 404, 404]
    assert all(r.headers["content-type"] == "application/problem+json" for r in (partial, extra, other_tenant))
    assert api.get(url, headers=key_for(a.id)).json()["assigned"] is True
