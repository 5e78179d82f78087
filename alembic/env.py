"""Alembic environment: the URL comes from threadline (config attribute) or DATABASE_URL."""

from __future__ import annotations

import os

from sqlalchemy import create_engine, pool

from alembic import context
from core.db.models import metadata
from knowledge import models as _knowledge_models  # noqa: F401  (plugin tables: core must not import them)
from inbound.widget import models as _widget_models  # noqa: F401  (the widget's tables)

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("no database URL: run `threadline migrate` or set DATABASE_URL")
    return str(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
