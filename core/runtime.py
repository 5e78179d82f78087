"""The wired-up objects one process needs: settings, engine, session factory, registry."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import make_engine, make_session_factory
from core.registry import Registry, load_plugins
from core.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    database_url: str
    redis_url: str | None
    engine: Engine
    factory: sessionmaker[Session]
    registry: Registry

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    database_url: str,
    redis_url: str | None,
    registry: Registry | None = None,
    pool_size: int = 10,
) -> Runtime:
    engine = make_engine(database_url, pool_size=pool_size)
    return Runtime(
        settings=settings,
        database_url=database_url,
        redis_url=redis_url,
        engine=engine,
        factory=make_session_factory(engine),
        registry=(registry if registry is not None else load_plugins(Registry())).bind(settings),
    )
