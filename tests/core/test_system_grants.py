"""The cross-tenant role (threadline_system) reads the knowledge base and webhooks but cannot write them:
those are written only in a tenant's unit of work (migration 0028)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.db.session import system_scope
from core.runtime import Runtime
from tests.conftest import make_tenant

SYSTEM_REFUSED = (
    "INSERT INTO kb_documents (id, tenant_id, source, title) SELECT gen_random_uuid(), id, 'x.md', 'x' FROM tenants",
    "UPDATE kb_documents SET title = 'changed'",
    "DELETE FROM kb_chunks",
    "UPDATE webhook_subscriptions SET url = 'https://attacker.test/'",
    "DELETE FROM webhook_subscriptions",
    "DELETE FROM webhook_deliveries",
)


@pytest.mark.parametrize("statement", SYSTEM_REFUSED, ids=lambda s: " ".join(s.split()[:3]))
def test_the_system_role_cannot_write_the_knowledge_base_or_webhooks(runtime: Runtime, statement: str) -> None:
    make_tenant(runtime)
    with pytest.raises(DBAPIError, match="permission denied"), system_scope(runtime.factory) as session:
        session.execute(text(statement))
    with system_scope(runtime.factory) as session:  # it still reads them
        for table in ("kb_documents", "kb_chunks", "webhook_subscriptions", "webhook_deliveries"):
            assert session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0
