"""SQL for roles and row-level security; used by migrations (keep it backwards compatible)."""

from __future__ import annotations

from core.db.session import APP_ROLE, SYSTEM_ROLE

# NULLIF: a reset custom setting reads as '' rather than NULL, and ''::uuid would raise.
TENANT_PREDICATE = "tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid"


def create_roles_sql() -> list[str]:
    """Roles the application switches to per transaction (SET LOCAL ROLE via set_config)."""
    return [
        f"""DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
            CREATE ROLE {APP_ROLE} NOLOGIN NOSUPERUSER NOBYPASSRLS;
          END IF;
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SYSTEM_ROLE}') THEN
            CREATE ROLE {SYSTEM_ROLE} NOLOGIN NOSUPERUSER BYPASSRLS;
          END IF;
        END $$""",
        # The connecting user must be able to switch into both roles.
        f"GRANT {APP_ROLE}, {SYSTEM_ROLE} TO CURRENT_USER",
        f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}, {SYSTEM_ROLE}",
    ]


def grant_table_sql(table: str, *, append_only: bool = False) -> list[str]:
    app_privs = "SELECT, INSERT" if append_only else "SELECT, INSERT, UPDATE, DELETE"
    return [
        f"GRANT {app_privs} ON {table} TO {APP_ROLE}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {SYSTEM_ROLE}",
    ]


def enable_rls_sql(table: str) -> list[str]:
    # FORCE: the table owner is subject to the policy too; only BYPASSRLS roles skip it.
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING ({TENANT_PREDICATE}) WITH CHECK ({TENANT_PREDICATE})",
    ]


def append_only_sql(table: str) -> list[str]:
    """Refuse UPDATE/DELETE for everyone (the timeline is an audit log), TRUNCATE aside."""
    return [
        """CREATE OR REPLACE FUNCTION threadline_refuse_change() RETURNS trigger
           LANGUAGE plpgsql AS $$ BEGIN
             RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
           END $$""",
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION threadline_refuse_change()""",
    ]
