"""The /api/v1 conventions: problem+json errors, scopes, request ids, idempotency, ETags, rate limits."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from admin_api.app import create_app
from admin_api.ratelimit import RateLimit
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import ApiKeyScope, IdempotencyRecord, Inbox
from tests.admin_api.conftest import Headers
from tests.conftest import make_tenant

PROBLEM = "application/problem+json"
KeyFor = Callable[..., Headers]


def _is_problem(res: object, status: int, slug: str) -> bool:
    body = res.json()  # type: ignore[attr-defined]
    return (res.status_code, res.headers["content-type"], body["type"], body["status"]) == (  # type: ignore[attr-defined]
        status, PROBLEM, f"https://threadline.dev/problems/{slug}", status
    ) and body["request_id"] == res.headers["x-request-id"]  # type: ignore[attr-defined]


def test_no_key_is_a_401_problem(api: TestClient) -> None:
    res = api.get("/api/v1/inboxes")
    assert _is_problem(res, 401, "unauthorized")
    assert (res.headers["www-authenticate"], res.json()["instance"]) == ("Bearer", "/api/v1/inboxes")


def test_a_key_of_tenant_a_on_tenant_b_inbox_is_404(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    _, inbox_b = make_tenant(runtime)
    res = api.get(f"/api/v1/inboxes/{inbox_b.id}", headers=key_for(a.id))
    assert _is_problem(res, 404, "not-found")


def test_a_key_of_tenant_a_cannot_patch_tenant_b_inbox(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    _, inbox_b = make_tenant(runtime)
    res = api.patch(f"/api/v1/inboxes/{inbox_b.id}", headers=key_for(a.id), json={"reply_mode": "explicit"})
    assert _is_problem(res, 404, "not-found")


def test_a_read_key_may_get_but_not_post(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    read = key_for(a.id, ApiKeyScope.READ)
    assert api.get("/api/v1/inboxes", headers=read).status_code == 200
    res = api.post("/api/v1/inboxes", headers=read, json={"address": "new@example.test"})
    assert _is_problem(res, 403, "forbidden")


def test_a_tenant_key_cannot_manage_tenants_and_a_platform_key_sees_no_tenant_data(
    api: TestClient, runtime: Runtime, key_for: KeyFor
) -> None:
    a, _ = make_tenant(runtime)
    assert _is_problem(api.get("/api/v1/tenants", headers=key_for(a.id)), 403, "forbidden")
    assert _is_problem(api.get("/api/v1/inboxes", headers=key_for(None, ApiKeyScope.PLATFORM)), 403, "forbidden")


def test_validation_errors_are_422_problems_naming_the_field(api: TestClient, runtime: Runtime,
                                                            key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    res = api.post("/api/v1/inboxes", headers=key_for(a.id), json={"address": "x@example.test", "reply_mode": "loud"})
    assert _is_problem(res, 422, "validation-error")
    assert [e["loc"] for e in res.json()["errors"]] == [["body", "reply_mode"]]


def test_unknown_routes_and_methods_are_problems(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    assert _is_problem(api.get("/api/v1/nothing-here", headers=key_for(a.id)), 404, "not-found")
    res = api.put("/api/v1/inboxes", headers=key_for(a.id))
    assert _is_problem(res, 405, "method-not-allowed") and "allow" in res.headers


def test_a_conflict_is_409_not_400(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    _, inbox_b = make_tenant(runtime)  # another tenant's address: hidden by RLS, still taken
    res = api.post("/api/v1/inboxes", headers=key_for(a.id), json={"address": inbox_b.address})
    assert _is_problem(res, 409, "conflict")


def test_an_unexpected_error_is_a_500_problem_with_the_request_id(runtime: Runtime) -> None:
    app = create_app(runtime)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    res = TestClient(app, raise_server_exceptions=False).get("/boom", headers={"X-Request-ID": "trace-12345678"})
    assert _is_problem(res, 500, "internal-error") and res.json()["request_id"] == "trace-12345678"


def test_a_sane_request_id_is_kept_and_an_odd_one_replaced(api: TestClient) -> None:
    assert api.get("/healthz", headers={"X-Request-ID": "edge-abc-12345"}).headers["x-request-id"] == "edge-abc-12345"
    replaced = api.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    assert len(replaced) == 16 and " " not in replaced


def test_log_lines_of_a_request_carry_its_id(api: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        api.get("/api/v1/inboxes", headers={"X-Request-ID": "req-log-1234"})
    assert [r.request_id for r in caplog.records if r.name == "admin_api.access"] == ["req-log-1234"]  # type: ignore[attr-defined]


def test_idempotent_post_replays_the_first_answer_and_creates_one_row(
    api: TestClient, runtime: Runtime, key_for: KeyFor
) -> None:
    a, _ = make_tenant(runtime)
    headers = {**key_for(a.id), "Idempotency-Key": "create-sales-inbox"}
    first = api.post("/api/v1/inboxes", headers=headers, json={"address": "sales@example.test"})
    again = api.post("/api/v1/inboxes", headers=headers, json={"address": "sales@example.test"})
    with system_scope(runtime.factory) as session:
        rows = session.execute(select(func.count()).select_from(Inbox).where(Inbox.address == "sales@example.test"))
        count = rows.scalar_one()
    assert (first.status_code, again.status_code, again.json(), again.headers["idempotent-replayed"], count) == (
        201, 201, first.json(), "true", 1)


def test_an_idempotency_key_reused_with_another_body_is_422(api: TestClient, runtime: Runtime,
                                                            key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    headers = {**key_for(a.id), "Idempotency-Key": "k-1"}
    assert api.post("/api/v1/inboxes", headers=headers, json={"address": "one@example.test"}).status_code == 201
    res = api.post("/api/v1/inboxes", headers=headers, json={"address": "two@example.test"})
    assert _is_problem(res, 422, "idempotency-key-reused")


def test_a_failed_idempotent_post_is_not_replayed(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    _, inbox_b = make_tenant(runtime)
    headers = {**key_for(a.id), "Idempotency-Key": "k-2"}
    assert api.post("/api/v1/inboxes", headers=headers, json={"address": inbox_b.address}).status_code == 409
    assert api.post("/api/v1/inboxes", headers=headers, json={"address": inbox_b.address}).headers.get(
        "idempotent-replayed") is None


def test_a_stale_if_match_is_412_and_a_fresh_one_applies(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, inbox = make_tenant(runtime)
    headers = key_for(a.id)
    etag = api.get(f"/api/v1/inboxes/{inbox.id}", headers=headers).headers["etag"]
    changed = api.patch(f"/api/v1/inboxes/{inbox.id}", headers={**headers, "If-Match": etag},
                        json={"reply_mode": "explicit"})
    stale = api.patch(f"/api/v1/inboxes/{inbox.id}", headers={**headers, "If-Match": etag},
                      json={"name": "Renamed"})
    assert (changed.status_code, changed.json()["reply_mode"]) == (200, "explicit")
    assert _is_problem(stale, 412, "precondition-failed")
    assert stale.headers["etag"] == changed.headers["etag"]


def test_if_none_match_with_the_current_etag_is_a_bodiless_304(api: TestClient, runtime: Runtime,
                                                                 key_for: KeyFor) -> None:
    a, inbox = make_tenant(runtime)
    headers = key_for(a.id)
    url = f"/api/v1/inboxes/{inbox.id}"
    etag = api.get(url, headers=headers).headers["etag"]
    same = api.get(url, headers={**headers, "If-None-Match": f'"other", W/{etag}'})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert "content-type" not in same.headers and same.headers["x-request-id"]
    api.patch(url, headers=headers, json={"name": "Renamed"})
    changed = api.get(url, headers={**headers, "If-None-Match": etag})
    assert (changed.status_code, changed.json()["name"]) == (200, "Renamed")
    assert changed.headers["etag"] != etag
    # Errors are never turned into 304s, and writes ignore If-None-Match here.
    missing = api.get("/api/v1/inboxes/00000000-0000-0000-0000-000000000000", headers={**headers, "If-None-Match": "*"})
    assert _is_problem(missing, 404, "not-found")


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(runtime: Runtime, key_for: KeyFor) -> None:
    client = TestClient(create_app(runtime, rate_limit=RateLimit(burst=3, per_second=0.1)))
    a, _ = make_tenant(runtime)
    headers = key_for(a.id)
    statuses = [client.get("/api/v1/inboxes", headers=headers).status_code for _ in range(4)]
    res = client.get("/api/v1/inboxes", headers=headers)
    assert statuses == [200, 200, 200, 429]
    assert _is_problem(res, 429, "rate-limited") and 1 <= int(res.headers["retry-after"]) <= 10
    assert client.get("/api/v1/inboxes", headers=key_for(a.id)).status_code == 200  # per key, not per tenant


def test_lists_are_cursor_paginated_with_a_link_header(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, first_inbox = make_tenant(runtime)
    headers = key_for(a.id)
    for n in range(4):
        api.post("/api/v1/inboxes", headers=headers, json={"address": f"box{n}@example.test"})
    seen, url = [], "/api/v1/inboxes?limit=2"
    while url:
        res = api.get(url, headers=headers)
        seen += [i["address"] for i in res.json()["items"]]
        url = res.headers["link"].split(">")[0][1:] if "link" in res.headers else ""
        assert (res.json()["next_cursor"] is None) == (url == "")
    assert seen == [f"box{n}@example.test" for n in (3, 2, 1, 0)] + [first_inbox.address]


def test_a_forged_cursor_is_a_400_problem(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    a, _ = make_tenant(runtime)
    assert _is_problem(api.get("/api/v1/inboxes?cursor=bm9wZQ", headers=key_for(a.id)), 400, "invalid-cursor")


def test_openapi_declares_the_bearer_scheme_tags_and_problem_responses(api: TestClient) -> None:
    doc = api.get("/openapi.json").json()
    op = doc["paths"]["/api/v1/inboxes"]["post"]
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "tl_<prefix>_<secret>",
        "description": "An API key: `Authorization: Bearer tl_…`"}
    assert (op["tags"], op["security"], list(op["responses"]["422"]["content"])) == (
        ["inboxes"], [{"ApiKey": []}], ["application/problem+json"])
    assert {t["name"] for t in doc["tags"]} >= {"tenants", "api-keys", "inboxes", "agents", "audit", "tickets"}


def test_a_replayable_answer_with_a_secret_is_not_stored_in_clear(runtime: Runtime, key_for: KeyFor) -> None:
    """The first admin key of a new tenant sits in the idempotency record only encrypted."""
    client = TestClient(create_app(runtime))
    platform = key_for(None, ApiKeyScope.PLATFORM)
    res = client.post("/api/v1/tenants", headers={**platform, "Idempotency-Key": "sealed"}, json={"name": "S"})
    with system_scope(runtime.factory) as session:
        stored = session.execute(select(IdempotencyRecord.response_body)).scalar_one()
    assert stored is not None and res.json()["admin_key"]["secret"].encode() not in stored
