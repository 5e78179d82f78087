"""Models and migrations agree; every tenant-owned table is walled by forced RLS."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from core.db.base import tenant_owned_tables
from core.db.migrate import current_revision, head_revision, upgrade
from core.db.models import metadata
from core.db.session import make_engine
from knowledge import models as _knowledge_models  # noqa: F401  (plugin tables are in the migrations too)
from inbound.widget import models as _widget_models  # noqa: F401
from tests.support.servers import PostgresForTests


def test_autogenerate_finds_no_difference_between_models_and_migrations(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, metadata)
    engine.dispose()
    assert diff == []


def test_every_tenant_owned_table_has_forced_rls_and_a_policy(database_url: str) -> None:
    engine = make_engine(database_url, pool_size=1)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
                "(SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) "
                "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r'"
            )
        ).all()
    engine.dispose()
    state = {name: (rls, forced, policies) for name, rls, forced, policies in rows}
    assert tenant_owned_tables(), "the mixin registered no tables"
    missing = [t for t in tenant_owned_tables() if state.get(t) != (True, True, 1)]
    assert missing == []


def test_migrate_is_idempotent_and_reaches_head_on_a_fresh_database(pg: PostgresForTests) -> None:
    url = pg.create_database("tl_migr")
    engine = make_engine(url, pool_size=1)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)  # a second run (another process at `up`) changes nothing
        assert current_revision(engine) == head_revision(engine)
    finally:
        engine.dispose()
        pg.drop_database(url)
