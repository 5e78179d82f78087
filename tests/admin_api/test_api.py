"""The API server: health, readiness, metrics, and the tenant-scoped admin API."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from admin_api.app import create_app
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.service import issue_api_key
from tests.conftest import make_tenant
from tests.core.factories import make_ticket
from tests.support.servers import RedisForTests


@pytest.fixture()
def client(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime))


def _key(rt: Runtime, tenant_id: object) -> str:
    with system_scope(rt.factory) as session:
        return issue_api_key(session=session, tenant_id=tenant_id, name="test").secret  # type: ignore[arg-type]


def test_healthz_answers_ok(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_database_and_redis(client: TestClient) -> None:
    res = client.get("/readyz")
    assert (res.status_code, res.json()["checks"]) == (200, {"database": "ok", "redis": "ok"})


def test_readyz_is_503_while_redis_is_down(client: TestClient, redis_server: RedisForTests) -> None:
    if redis_server._embedded is None:
        pytest.skip("needs the embedded Redis to stop it")
    redis_server.stop()
    try:
        res = client.get("/readyz")
    finally:
        redis_server.restart()
    assert res.status_code == 503
    assert res.json()["checks"]["redis"].startswith("unreachable")


def test_admin_api_needs_a_key(client: TestClient) -> None:
    res = client.get("/api/v1/tickets")
    assert (res.status_code, res.headers.get("www-authenticate")) == (401, "Bearer")


@pytest.mark.parametrize(
    "key",
    ["tl_000000000000_forged", "not-a-key", "tl_", "Bearer", "tl_abc_" + "x" * 5000],
)
def test_admin_api_rejects_forged_or_malformed_keys(client: TestClient, runtime: Runtime, key: str) -> None:
    make_tenant(runtime)
    assert client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_a_tenant_key_sees_only_its_own_tickets(client: TestClient, runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id, subject="A's ticket")
    make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id, subject="B's ticket")
    res = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {_key(runtime, a.id)}"})
    assert [t["subject"] for t in res.json()["items"]] == ["A's ticket"]


def test_ticket_detail_has_messages_and_timeline_and_404s_for_foreign_numbers(
    client: TestClient, runtime: Runtime
) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    make_ticket(runtime, tenant_id=a.id, inbox_id=inbox_a.id)
    make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)
    make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)
    headers = {"Authorization": f"Bearer {_key(runtime, a.id)}"}
    detail = client.get("/api/v1/tickets/1", headers=headers).json()
    assert ([m["direction"] for m in detail["messages"]], [e["kind"] for e in detail["timeline"]]) == (
        ["inbound"],
        ["ticket.opened", "message.appended"],
    )
    assert client.get("/api/v1/tickets/2", headers=headers).status_code == 404


def test_creating_a_ticket_through_the_api_opens_it_with_the_customer_message(
    client: TestClient, runtime: Runtime
) -> None:
    a, _ = make_tenant(runtime)
    headers = {"Authorization": f"Bearer {_key(runtime, a.id)}"}
    res = client.post(
        "/api/v1/tickets",
        headers=headers,
        json={"subject": "Phone: restore failed", "customer_email": "Carol@Example.test", "text": "called at 9"},
    )
    body = res.json()
    assert (res.status_code, body["number"], body["channel"], body["contact_email"]) == (
        201, 1, "api", "carol@example.test",
    )


def test_creating_a_ticket_with_a_bad_address_is_a_clear_422(client: TestClient, runtime: Runtime) -> None:
    a, _ = make_tenant(runtime)
    headers = {"Authorization": f"Bearer {_key(runtime, a.id)}"}
    res = client.post("/api/v1/tickets", headers=headers, json={"subject": "x", "customer_email": "nope", "text": "t"})
    assert res.status_code == 422
    assert "customer_email" in res.text
