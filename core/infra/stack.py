"""Resolve where Postgres and Redis are: configured URLs, or the embedded servers."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from core.crypto import load_or_create_key_file
from core.db.roles import DEFAULT_RUNTIME_LOGIN
from core.infra.embedded import EmbeddedPostgres, EmbeddedRedis
from core.settings import Settings

log = logging.getLogger(__name__)

EMBEDDED_DB_NAME = "threadline"
RUNTIME_PASSWORD_FILE = "db-runtime.password"


@dataclass
class Infrastructure:
    database_url: str  # the runtime login every component uses
    redis_url: str | None
    embedded_postgres: EmbeddedPostgres | None = None
    embedded_redis: EmbeddedRedis | None = None
    _owned: list[object] = field(default_factory=list)
    migration_url: str | None = None  # the owner; None = DATABASE_URL (refused if it is a runtime login)

    @property
    def owner_url(self) -> str:
        return self.migration_url or self.database_url

    @property
    def started_embedded_postgres(self) -> bool:
        """This process started the embedded Postgres: nothing else was running on the data dir."""
        return self.embedded_postgres is not None and self.embedded_postgres in self._owned

    def stop(self) -> None:
        """Stop only the embedded servers this process started (redis first: it has no clients left)."""
        for server in reversed(self._owned):
            try:
                server.stop()  # type: ignore[attr-defined]
            except Exception as exc:  # shutting down: report and keep stopping the rest
                log.warning("embedded server did not stop cleanly", extra={"error": str(exc)})
        self._owned.clear()


def _ensure_database(admin_url: str, name: str) -> str:
    engine = create_engine(admin_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar()
        if not exists:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def embedded_runtime_url(owner_url: str, data_dir: Path) -> str:
    """The runtime login on the embedded server; its password is generated once into the data dir."""
    password = load_or_create_key_file(data_dir / RUNTIME_PASSWORD_FILE)
    return make_url(owner_url).set(username=DEFAULT_RUNTIME_LOGIN, password=password).render_as_string(
        hide_password=False
    )


def _redis_alive(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, OSError):
        return False


def start_infrastructure(settings: Settings, *, need_redis: bool = True) -> Infrastructure:
    """Use DATABASE_URL/REDIS_URL when set; otherwise start (or join) the embedded servers."""
    data_dir = settings.data_dir.resolve()
    owned: list[object] = []
    pg: EmbeddedPostgres | None = None
    migration_url: str | None = None
    if settings.database_url is not None:
        database_url = settings.database_url.get_secret_value()
        if settings.database_migration_url is not None:
            migration_url = settings.database_migration_url.get_secret_value()
    else:
        pg = EmbeddedPostgres(data_dir)
        already_running = (pg.pgdata / "postmaster.pid").exists()
        admin_url = pg.start()
        if not already_running:
            owned.append(pg)
        migration_url = _ensure_database(admin_url, EMBEDDED_DB_NAME)  # the embedded superuser
        database_url = embedded_runtime_url(migration_url, data_dir)
    rds: EmbeddedRedis | None = None
    redis_url: str | None = None
    if settings.redis_url is not None:
        redis_url = settings.redis_url.get_secret_value()
    elif need_redis:
        rds = EmbeddedRedis(data_dir)
        existing = f"unix://{rds.socket_path}?db=0"
        if rds.socket_path.exists() and _redis_alive(existing):
            redis_url = existing
        else:
            redis_url = rds.start()
            owned.append(rds)
    return Infrastructure(database_url, redis_url, pg, rds, owned, migration_url)


@contextmanager
def infrastructure(settings: Settings, *, need_redis: bool = True) -> Iterator[Infrastructure]:
    infra = start_infrastructure(settings, need_redis=need_redis)
    try:
        yield infra
    finally:
        infra.stop()
