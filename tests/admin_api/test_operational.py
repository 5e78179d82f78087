"""Operational endpoints: /metrics only with its bearer token and cheap, API docs only on request."""

from __future__ import annotations

from fastapi.testclient import TestClient
from pydantic import SecretStr

from admin_api.app import create_app
from core.runtime import Runtime
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

TOKEN = "metrics-token-for-tests"


def test_metrics_are_off_without_a_configured_token(runtime: Runtime) -> None:
    assert TestClient(create_app(runtime)).get("/metrics").status_code == 404


def test_metrics_refuse_a_missing_or_wrong_bearer(runtime: Runtime) -> None:
    runtime.settings.metrics_token = SecretStr(TOKEN)
    client = TestClient(create_app(runtime))
    codes = [client.get("/metrics").status_code,
             client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code]
    assert codes == [401, 401]


def test_metrics_with_the_token_report_backlog_and_estimates(runtime: Runtime) -> None:
    runtime.settings.metrics_token = SecretStr(TOKEN)
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    body = TestClient(create_app(runtime)).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert "threadline_database_up 1.0" in body
    assert 'threadline_table_rows_estimate{table="tickets"}' in body
    assert "threadline_tickets{" not in body  # no per-scrape count over every tenant's tickets


def test_docs_pages_are_off_by_default_but_the_schema_is_served(runtime: Runtime) -> None:
    client = TestClient(create_app(runtime))
    codes = [client.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")]
    assert codes == [404, 404, 200]


def test_docs_pages_are_served_when_enabled(runtime: Runtime) -> None:
    runtime.settings.api_docs = True
    client = TestClient(create_app(runtime))
    assert [client.get(p).status_code for p in ("/docs", "/redoc")] == [200, 200]
