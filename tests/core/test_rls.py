"""Row-level security is a real second wall: the app role cannot see or write other tenants."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from core.db.session import APP_ROLE, tenant_scope
from core.runtime import Runtime
from core.tickets import service
from core.tickets.models import Channel
from core.tickets.schemas import SYSTEM_ACTOR
from tests.conftest import make_tenant


def _ticket_for(rt: Runtime, tenant_id: uuid.UUID, inbox_id: uuid.UUID, subject: str) -> uuid.UUID:
    with tenant_scope(rt.factory, tenant_id) as session:
        out = service.open_ticket(
            session=session, tenant_id=tenant_id, inbox_id=inbox_id, subject=subject,
            channel=Channel.API, contact_id=None, actor=SYSTEM_ACTOR,
        )
        return out.value.id


def test_app_role_is_subject_to_rls(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": APP_ROLE}
        ).one()
    assert tuple(row) == (False, False)


def test_raw_sql_with_tenant_a_set_sees_none_of_tenant_b(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    _ticket_for(runtime, a.id, inbox_a.id, "from A")
    _ticket_for(runtime, b.id, inbox_b.id, "from B")
    with tenant_scope(runtime.factory, a.id) as session:
        subjects = session.execute(text("SELECT subject FROM tickets")).scalars().all()
        tenants_seen = set(session.execute(text("SELECT DISTINCT tenant_id FROM ticket_events")).scalars())
        b_rows = session.execute(text("SELECT count(*) FROM tickets WHERE tenant_id = :b"), {"b": b.id}).scalar()
    assert subjects == ["from A"]
    assert tenants_seen == {a.id}
    assert b_rows == 0


def test_raw_sql_with_tenant_a_set_cannot_insert_rows_for_tenant_b(runtime: Runtime) -> None:
    a, _ = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    with pytest.raises(ProgrammingError, match="row-level security"):
        with tenant_scope(runtime.factory, a.id) as session:
            session.execute(
                text("INSERT INTO contacts (id, tenant_id, email) VALUES (:id, :t, 'x@example.test')"),
                {"id": uuid.uuid4(), "t": b.id},
            )


def test_raw_sql_with_tenant_a_set_cannot_move_its_rows_to_tenant_b(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    b, _ = make_tenant(runtime)
    _ticket_for(runtime, a.id, inbox_a.id, "mine")
    with pytest.raises(ProgrammingError, match="row-level security"):
        with tenant_scope(runtime.factory, a.id) as session:
            session.execute(text("UPDATE contacts SET tenant_id = :b"), {"b": b.id})
            session.execute(text("UPDATE tickets SET tenant_id = :b"), {"b": b.id})


def test_without_a_tenant_set_the_app_role_sees_nothing(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    _ticket_for(runtime, a.id, inbox_a.id, "hidden")
    with runtime.engine.begin() as conn:
        conn.execute(text("SELECT set_config('role', :r, true)"), {"r": APP_ROLE})
        assert conn.execute(text("SELECT count(*) FROM tickets")).scalar() == 0


def test_ticket_timeline_is_append_only(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    _ticket_for(runtime, a.id, inbox_a.id, "audited")
    with pytest.raises(DBAPIError, match="permission denied|append-only"):
        with tenant_scope(runtime.factory, a.id) as session:
            session.execute(text("UPDATE ticket_events SET kind = 'forged'"))
    with pytest.raises(DBAPIError, match="permission denied|append-only"):
        with tenant_scope(runtime.factory, a.id) as session:
            session.execute(text("DELETE FROM ticket_events"))
