"""Text with a NUL character gets a 422 problem, never a 500 from the database driver."""

from __future__ import annotations

import json
from collections.abc import Callable

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from admin_api.nul_guard import has_nul_in_json
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Inbox
from tests.admin_api.conftest import Headers
from tests.conftest import make_tenant

KeyFor = Callable[..., Headers]


def test_a_search_with_a_nul_is_refused_with_422(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    tenant, _ = make_tenant(runtime)
    for path in ("/api/v1/knowledge/search?q=a%00b", "/api/v1/tickets?q=refund%00"):
        r = api.get(path, headers=key_for(tenant.id))
        assert (r.status_code, r.headers["content-type"], "NUL" in r.json()["detail"]) == (
            422, "application/problem+json", True), r.text


def test_a_json_body_with_a_nul_is_refused_and_creates_nothing(api: TestClient, runtime: Runtime,
                                                              key_for: KeyFor) -> None:
    tenant, _ = make_tenant(runtime)
    r = api.post("/api/v1/inboxes", headers={**key_for(tenant.id), "Content-Type": "application/json"},
                 content=json.dumps({"address": "nul@acme.test", "name": "a\u0000b"}))
    assert (r.status_code, r.headers["content-type"]) == (422, "application/problem+json"), r.text
    with system_scope(runtime.factory) as session:
        assert session.execute(select(func.count()).select_from(Inbox).where(Inbox.address == "nul@acme.test")
                               ).scalar_one() == 0


def test_an_escaped_backslash_before_u0000_is_not_a_nul(api: TestClient, runtime: Runtime, key_for: KeyFor) -> None:
    tenant, _ = make_tenant(runtime)
    r = api.get("/api/v1/tickets?q=%5Cu0000", headers=key_for(tenant.id))  # the six characters \u0000
    assert r.status_code == 200, r.text


@given(st.text(max_size=30))
def test_the_json_check_agrees_with_the_parser(text: str) -> None:
    assert has_nul_in_json(json.dumps({"t": text}).encode()) == ("\x00" in text)
