"""Admin API fixtures: the app over the real database, and keys of each scope."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from admin_api.app import create_app
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.keys import issue_api_key
from core.tenancy.models import ApiKeyScope

Headers = dict[str, str]


@pytest.fixture()
def api(runtime: Runtime) -> TestClient:
    return TestClient(create_app(runtime))


def make_key(rt: Runtime, tenant_id: uuid.UUID | None, scope: ApiKeyScope = ApiKeyScope.ADMIN) -> Headers:
    """Authorization headers for a new key (platform keys: tenant_id None)."""
    with system_scope(rt.factory) as session:
        secret = issue_api_key(session=session, tenant_id=tenant_id, name=f"{scope.value} test key", scope=scope).secret
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture()
def key_for(runtime: Runtime) -> Callable[..., Headers]:
    def _make(tenant_id: uuid.UUID | None, scope: ApiKeyScope = ApiKeyScope.ADMIN) -> Headers:
        return make_key(runtime, tenant_id, scope)

    return _make
