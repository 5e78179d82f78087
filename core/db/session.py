"""Engines and units of work. Every transaction runs as a database role RLS applies to.

- `tenant_scope(...)`: role `threadline_app` + `app.tenant_id` set for this transaction only;
  RLS policies make other tenants' rows invisible and unwritable (the second wall).
- `system_scope(...)`: role `threadline_system` (BYPASSRLS) for the few cross-tenant jobs:
  address → inbox at SMTP RCPT, API key lookup, the outbox relay, bootstrap, operator CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

APP_ROLE = "threadline_app"
SYSTEM_ROLE = "threadline_system"
_TENANT_KEY = "threadline.tenant_id"

_SET_TENANT = text("SELECT set_config('role', :role, true), set_config('app.tenant_id', :tenant, true)")
_SET_SYSTEM = text("SELECT set_config('role', :role, true), set_config('app.tenant_id', '', true)")


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=False,
        pool_recycle=1800,
        echo=echo,
        connect_args={"connect_timeout": 5},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: edges read ids/fields after commit to build responses.
    return sessionmaker(engine, expire_on_commit=False, autoflush=True)


@contextmanager
def tenant_scope(factory: sessionmaker[Session], tenant_id: uuid.UUID) -> Iterator[Session]:
    """One unit of work for one tenant: commit on success, roll back on error."""
    with factory() as session, session.begin():
        session.execute(_SET_TENANT, {"role": APP_ROLE, "tenant": str(tenant_id)})
        session.info[_TENANT_KEY] = tenant_id
        yield session


@contextmanager
def system_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One cross-tenant unit of work (RLS bypassed on purpose; keep these few and small)."""
    with factory() as session, session.begin():
        session.execute(_SET_SYSTEM, {"role": SYSTEM_ROLE})
        yield session


def scoped_tenant(session: Session) -> uuid.UUID | None:
    """The tenant a `tenant_scope` session was opened for (None in system scope or a bare session).

    Tenant-owned queries filter on it explicitly, so RLS stays the second wall, not the only one."""
    tenant = session.info.get(_TENANT_KEY)
    return tenant if isinstance(tenant, uuid.UUID) else None


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
