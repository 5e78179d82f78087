"""Real Postgres and Redis for tests: the embedded ones, or DATABASE_URL / REDIS_URL."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import make_url

from core.infra.embedded import EmbeddedPostgres, EmbeddedRedis


RUNTIME_LOGIN = "threadline_runtime"
RUNTIME_PASSWORD = "runtime-test-password"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresForTests:
    """One server per test session; a fresh database per test module (or per caller)."""

    def __init__(self, base_dir: Path) -> None:
        self._embedded: EmbeddedPostgres | None = None
        url = os.environ.get("DATABASE_URL")
        if url:
            self.admin_url = url
        else:
            self._embedded = EmbeddedPostgres(base_dir)
            self.admin_url = self._embedded.start()

    def create_database(self, prefix: str = "tl_test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        engine = create_engine(self.admin_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        return make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)

    @staticmethod
    def runtime_url(owner_url: str) -> str:
        """The same database through the runtime login (created by `upgrade(..., runtime_url=...)`)."""
        return make_url(owner_url).set(username=RUNTIME_LOGIN, password=RUNTIME_PASSWORD).render_as_string(
            hide_password=False
        )

    def drop_database(self, url: str) -> None:
        name = make_url(url).database
        engine = create_engine(self.admin_url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()


class RedisForTests:
    def __init__(self, base_dir: Path) -> None:
        self._embedded: EmbeddedRedis | None = None
        url = os.environ.get("REDIS_URL")
        if url:
            self.url = url
        else:
            self._embedded = EmbeddedRedis(base_dir)
            self.url = self._embedded.start()

    def stop(self) -> None:
        if self._embedded is not None:
            self._embedded.stop()

    def restart(self) -> None:
        """Embedded only: bring Redis back after a 'Redis is down' test stopped it."""
        if self._embedded is not None:
            self.url = self._embedded.start()
