"""Database logins: the owner that migrates and the runtime login every component uses.

The runtime login owns nothing, is not superuser, has no BYPASSRLS/CREATEROLE/CREATEDB and is
NOINHERIT: on its own it can read no table at all. It may only switch (SET ROLE, via
`set_config('role', …)` in core.db.session) into `threadline_app` (tenant work, RLS applies) or
`threadline_system` (the few cross-tenant jobs). It is not a member of the owner, so it cannot
`SET ROLE` to it.

`threadline_system` keeps BYPASSRLS on purpose: what it does is cross-tenant by definition, and
explicit "see everything" policies on every table would say the same thing twice per table. Its
wall is the code (a handful of `system_scope` call sites) and its grants, not RLS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from psycopg import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url

from core.db.session import APP_ROLE, SYSTEM_ROLE
from core.errors import OperatorError

log = logging.getLogger(__name__)

DEFAULT_RUNTIME_LOGIN = "threadline_runtime"

_INSPECT = """
    SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolinherit,
      EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relowner = r.oid AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_temp%' AND n.nspname NOT LIKE 'pg\\_toast%')
      OR EXISTS (SELECT 1 FROM pg_database d WHERE d.datname = current_database() AND d.datdba = r.oid)
      OR EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = 'public' AND n.nspowner = r.oid) AS owns,
      has_schema_privilege(r.oid, 'public', 'CREATE') AS can_create,
      ARRAY(SELECT m.rolname::text FROM pg_roles m
            WHERE m.oid <> r.oid AND pg_has_role(r.oid, m.oid, 'MEMBER') AND m.rolname NOT LIKE 'pg\\_%'
            ORDER BY m.rolname) AS can_become
    FROM pg_roles r WHERE r.rolname = :who
"""


@dataclass(frozen=True)
class LoginInfo:
    """What a database login is allowed to be, read from the catalog."""

    name: str
    superuser: bool
    bypassrls: bool
    createrole: bool
    inherit: bool
    owns_objects: bool  # a table, the database or the public schema
    can_create: bool  # CREATE on schema public
    can_become: tuple[str, ...]  # roles it may SET ROLE to (superusers: any, not listed)

    @property
    def is_owner(self) -> bool:
        """Could lift RLS or change the schema: not fit for running components."""
        return self.superuser or self.bypassrls or self.owns_objects

    @property
    def is_runtime(self) -> bool:
        return not self.is_owner and not self.createrole and APP_ROLE in self.can_become

    def describe(self) -> str:
        flags = [f for f, on in (("superuser", self.superuser), ("bypassrls", self.bypassrls),
                                 ("createrole", self.createrole), ("owner", self.owns_objects)) if on]
        kind = "runtime login" if self.is_runtime else ("owner" if self.is_owner else "other login")
        become = ", ".join(self.can_become) or "nothing"
        return f"{self.name} ({kind}; {', '.join(flags) or 'no owner rights'}; may switch to: {become})"


def _inspect(conn: Connection, who: str) -> LoginInfo | None:
    row = conn.execute(text(_INSPECT), {"who": who}).one_or_none()
    if row is None:
        return None
    name, sup, bypass, createrole, inherit, owns, can_create, become = row
    return LoginInfo(name, sup, bypass, createrole, inherit, owns, can_create, tuple(become))


def inspect_login(conn: Connection) -> LoginInfo:
    """Who this connection logged in as (session_user: a SET ROLE does not change the answer)."""
    info = _inspect(conn, str(conn.execute(text("SELECT session_user")).scalar_one()))
    assert info is not None  # the logged-in role exists
    return info


def refuse_runtime_migration(info: LoginInfo) -> None:
    """Migrations need the owner; with the runtime login they would fail halfway, so say it first."""
    if info.superuser or info.owns_objects:
        return
    if info.is_runtime or not info.can_create:
        raise OperatorError(
            f"cannot migrate as {info.name!r}: it is a runtime login that owns nothing and cannot change the "
            "schema. Migrations run as the owner: set DATABASE_MIGRATION_URL to the owner's URL "
            "(DATABASE_URL stays the runtime login), or leave DATABASE_URL unset to use the embedded server"
        )


def ensure_runtime_login(conn: Connection, runtime_url: str) -> LoginInfo | None:
    """Create or update the runtime login named in `runtime_url` and grant what it may do.

    Runs at the end of every migrate (idempotent), so a password changed in the URL applies at the
    next migrate. Returns None (and changes nothing) when the URL names the owner itself.
    """
    url = make_url(runtime_url)
    name, password = url.username, url.password
    if not name:
        raise OperatorError("DATABASE_URL names no user: the runtime login needs a name")
    me = inspect_login(conn)
    if name == me.name:
        log.warning("DATABASE_URL logs in as the migration owner %s; components will refuse to start as it", name)
        return None
    existing = _inspect(conn, name)
    if existing is not None and existing.is_owner:
        raise OperatorError(
            f"DATABASE_URL's user {name!r} is an owner (superuser, BYPASSRLS or owns objects); "
            "give the components a login of their own, e.g. threadline_runtime"
        )
    verb = "ALTER" if existing is not None else "CREATE"
    # NOINHERIT: the login's own privileges are nil; it works only after switching role.
    parts = [sql.SQL(verb + " ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT")
             .format(sql.Identifier(name))]
    if password:
        parts.append(sql.SQL("PASSWORD {}").format(sql.Literal(password)))
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.execute(sql.SQL(" ").join(parts))  # composed on the client, quoted by psycopg
    ident = sql.Identifier(name)
    raw.execute(sql.SQL("GRANT {}, {} TO {}").format(sql.Identifier(APP_ROLE), sql.Identifier(SYSTEM_ROLE), ident))
    raw.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
        sql.Identifier(str(conn.execute(text("SELECT current_database()")).scalar_one())), ident))
    # Components check the schema version at start, before any role switch.
    raw.execute(sql.SQL("GRANT SELECT ON alembic_version TO {}").format(ident))
    return _inspect(conn, name)


def check_runtime_login(engine: Engine, *, allow_owner: bool) -> LoginInfo:
    """Components refuse an owner login: with one, RLS would be a wall the process itself could lift."""
    with engine.connect() as conn:
        info = inspect_login(conn)
    if info.is_owner and not allow_owner:
        raise OperatorError(
            f"refusing to run as {info.describe()}: DATABASE_URL must be the runtime login (it owns nothing, "
            "cannot bypass RLS); migrate with DATABASE_MIGRATION_URL as the owner. "
            "Set THREADLINE_ALLOW_OWNER_LOGIN=true to run as an owner anyway"
        )
    return info
