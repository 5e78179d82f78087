"""Fixtures shared by every test: real Postgres (pgvector) and Redis, migrated databases."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import text

from core.db.base import Base
from core.db.migrate import upgrade
from core.db.session import make_engine, system_scope
from core.registry import Registry, load_plugins
from core.runtime import Runtime, build_runtime
from core.settings import Settings
from core.tenancy.models import Inbox, Tenant
from core.tenancy.service import create_inbox, create_tenant
from tests.support.servers import PostgresForTests, RedisForTests


@pytest.fixture(scope="session")
def pg() -> Iterator[PostgresForTests]:
    # Short path: Unix socket paths are limited to ~107 bytes.
    base = Path(tempfile.mkdtemp(prefix="tlpg", dir="/tmp"))
    server = PostgresForTests(base)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisForTests]:
    base = Path(tempfile.mkdtemp(prefix="tlrd", dir="/tmp"))
    server = RedisForTests(base)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def owner_url(pg: PostgresForTests) -> str:
    """One database for the session, migrated by its owner; tests clean their rows (see `_truncate`)."""
    url = pg.create_database()
    engine = make_engine(url, pool_size=1)
    upgrade(engine, runtime_url=pg.runtime_url(url))
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def database_url(pg: PostgresForTests, owner_url: str) -> str:
    """The session database as the product sees it: through the runtime login, never the owner."""
    return pg.runtime_url(owner_url)


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=2)


@pytest.fixture()
def registry() -> Registry:
    return load_plugins(Registry())


@pytest.fixture()
def runtime(
    database_url: str, owner_url: str, redis_server: RedisForTests, settings: Settings, registry: Registry
) -> Iterator[Runtime]:
    rt = build_runtime(settings, database_url=database_url, redis_url=redis_server.url, registry=registry)
    _truncate(owner_url)
    redis.Redis.from_url(redis_server.url).flushdb()
    yield rt
    rt.close()


def _truncate(owner_url: str) -> None:
    # The runtime login may not TRUNCATE (nor bypass the append-only timeline): the owner cleans.
    engine = make_engine(owner_url, pool_size=1)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


def make_tenant(rt: Runtime, *, name: str | None = None, address: str | None = None) -> tuple[Tenant, Inbox]:
    """A tenant with one inbox, committed."""
    name = name or f"Tenant {uuid.uuid4().hex[:6]}"
    with system_scope(rt.factory) as session:
        tenant = create_tenant(session=session, name=name)
        inbox = create_inbox(
            session=session, tenant_id=tenant.id, address=address or f"support-{uuid.uuid4().hex[:6]}@example.test"
        )
    return tenant, inbox
