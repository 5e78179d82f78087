"""The runtime login, tried for real: what it cannot become, see or change, and who says so."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, ProgrammingError

from core.db.migrate import upgrade
from core.db.roles import inspect_login
from core.db.session import make_engine, system_scope, tenant_scope
from core.errors import OperatorError
from core.runtime import Runtime
from core.tickets import service
from core.tickets.models import Channel
from core.tickets.schemas import SYSTEM_ACTOR
from tests.conftest import make_tenant
from tests.support.cli import Ran, run_cli
from tests.support.servers import RedisForTests


def _ticket(rt: Runtime, tenant_id: uuid.UUID, inbox_id: uuid.UUID, subject: str) -> None:
    with tenant_scope(rt.factory, tenant_id) as session:
        service.open_ticket(session=session, tenant_id=tenant_id, inbox_id=inbox_id, subject=subject,
                            channel=Channel.API, contact_id=None, actor=SYSTEM_ACTOR)


def test_the_runtime_login_owns_nothing_and_has_no_power_attributes(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        info = inspect_login(conn)
    assert (info.superuser, info.bypassrls, info.createrole, info.owns_objects, info.inherit, info.can_create) == (
        False, False, False, False, False, False)
    assert info.can_become == ("threadline_app", "threadline_system")


def test_the_runtime_login_cannot_set_role_to_the_owner(runtime: Runtime, owner_url: str) -> None:
    owner = make_url(owner_url).username
    with runtime.engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied to set role"):
        conn.execute(text(f'SET ROLE "{owner}"'))


def test_the_runtime_login_alone_reads_no_table(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        conn.execute(text("SELECT count(*) FROM tickets"))


def test_row_security_off_in_a_tenant_transaction_errors_instead_of_showing_other_tenants(runtime: Runtime) -> None:
    a, inbox_a = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    _ticket(runtime, a.id, inbox_a.id, "from A")
    _ticket(runtime, b.id, inbox_b.id, "from B")
    # Postgres: for a role without BYPASSRLS, row_security=off makes a query that RLS would filter fail.
    with pytest.raises(DBAPIError, match="row-level security"):
        with tenant_scope(runtime.factory, a.id) as session:
            session.execute(text("SET LOCAL row_security = off"))
            session.execute(text("SELECT subject FROM tickets")).all()


def test_a_tenant_reads_only_its_own_name(runtime: Runtime) -> None:
    a, _ = make_tenant(runtime, name="Alpha Corp")
    make_tenant(runtime, name="Beta Corp")
    with tenant_scope(runtime.factory, a.id) as session:
        names = session.execute(text("SELECT name FROM tenants")).scalars().all()
    assert names == ["Alpha Corp"]


def test_migrating_with_the_runtime_url_is_refused_with_a_clear_message(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        with pytest.raises(OperatorError, match="runtime login .* set DATABASE_MIGRATION_URL"):
            upgrade(engine)
    finally:
        engine.dispose()


def _cli(*args: str, env: dict[str, str]) -> Ran:
    return run_cli(*args, env=env)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"THREADLINE_DATA_DIR": str(tmp_path), "THREADLINE_LOG_LEVEL": "WARNING", **extra}


def test_doctor_says_which_role_each_url_logs_in_as(
    runtime: Runtime, database_url: str, owner_url: str, redis_server: RedisForTests, tmp_path: Path
) -> None:
    res = _cli("doctor", env=_env(tmp_path, DATABASE_URL=database_url, DATABASE_MIGRATION_URL=owner_url,
                                  REDIS_URL=redis_server.url))
    assert "DATABASE_URL logs in as threadline_runtime (runtime login; no owner rights" in res.stdout
    assert "DATABASE_MIGRATION_URL (migrations) logs in as" in res.stdout and "superuser" in res.stdout


def test_a_command_refuses_the_owner_login_unless_allowed(runtime: Runtime, owner_url: str, tmp_path: Path) -> None:
    make_tenant(runtime)
    refused = _cli("tickets", "list", env=_env(tmp_path, DATABASE_URL=owner_url))
    allowed = _cli("tickets", "list", env=_env(tmp_path, DATABASE_URL=owner_url, THREADLINE_ALLOW_OWNER_LOGIN="true"))
    assert (refused.returncode, "refusing to run as" in refused.stderr) == (1, True)
    assert allowed.returncode == 0, allowed.stderr


@pytest.mark.parametrize("role", [None, "threadline_app", "threadline_system"])
def test_the_runtime_login_cannot_create_temporary_tables(runtime: Runtime, role: str | None) -> None:
    """A temporary table would be an object the runtime login owns (migration 0026)."""
    with runtime.engine.connect() as conn, pytest.raises(ProgrammingError, match="permission denied"):
        if role:
            conn.execute(text(f"SET ROLE {role}"))
        conn.execute(text("CREATE TEMPORARY TABLE scratch (i int)"))


# What the cross-tenant role has no business doing: ticket content is written in a tenant's unit of work.
SYSTEM_REFUSED = (
    "UPDATE tickets SET subject = 'changed'",
    "DELETE FROM messages",
    "UPDATE messages SET body_text = 'changed'",
    "INSERT INTO contacts (id, tenant_id, email) SELECT gen_random_uuid(), id, 'x@example.test' FROM tenants",
    "DELETE FROM attachments",
    "UPDATE drafts SET text = 'changed'",
    "DELETE FROM widget_messages",
)


@pytest.mark.parametrize("statement", SYSTEM_REFUSED, ids=lambda s: " ".join(s.split()[:3]))
def test_the_system_role_cannot_write_ticket_content(runtime: Runtime, statement: str) -> None:
    tenant, inbox = make_tenant(runtime)
    _ticket(runtime, tenant.id, inbox.id, "unchanged")
    with pytest.raises(DBAPIError, match="permission denied"), system_scope(runtime.factory) as session:
        session.execute(text(statement))
    with system_scope(runtime.factory) as session:  # and it still reads what routing and retention read
        assert session.execute(text("SELECT subject FROM tickets")).scalars().all() == ["unchanged"]
        session.execute(text("UPDATE messages SET raw_inbound_id = NULL WHERE raw_inbound_id = gen_random_uuid()"))
