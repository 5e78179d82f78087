"""Run alembic migrations from code (threadline migrate, threadline up, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from core.db.roles import ensure_runtime_login, inspect_login, refuse_runtime_migration

ROOT = Path(__file__).resolve().parents[2]

# Serialises concurrent `migrate` runs (compose starts several services at once).
_MIGRATION_LOCK_ID = 0x7468726C  # "thrl"


def alembic_config(url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["url"] = url
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, runtime_url: str | None = None) -> None:
    """Migrate as the owner `engine` logs in as; then create/update the runtime login of `runtime_url`."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        refuse_runtime_migration(inspect_login(conn))
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if runtime_url is not None:
            ensure_runtime_login(conn, runtime_url)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    return ScriptDirectory.from_config(cfg).get_current_head()
