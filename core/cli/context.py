"""Shared plumbing for commands: settings, logging, infrastructure and runtime."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError

from core.db.migrate import current_revision, head_revision, upgrade
from core.db.roles import check_runtime_login
from core.db.session import make_engine
from core.errors import OperatorError
from core.infra.stack import Infrastructure, infrastructure
from core.logs import configure_logging
from core.registry import Registry
from core.runtime import Runtime, build_runtime
from core.settings import Settings, load_settings


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err.get("loc", ["?"])[0]).upper()
            typer.secho(f"setting {name}: {err['msg']}", fg="red", err=True)
        raise typer.Exit(2) from None


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(message, fg="red", err=True)
    return typer.Exit(code)


def migrate_as_owner(infra: Infrastructure) -> None:
    """Migrate with the owner URL; when it differs from DATABASE_URL, also (re)create the runtime login."""
    engine = make_engine(infra.owner_url, pool_size=1)
    try:
        upgrade(engine, runtime_url=infra.database_url if infra.migration_url else None)
    finally:
        engine.dispose()


@contextmanager
def command_infra(*, need_redis: bool = False) -> Iterator[tuple[Settings, Infrastructure]]:
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    try:
        with infrastructure(settings, need_redis=need_redis) as infra:
            yield settings, infra
    except OperatorError as exc:
        raise fail(f"error: {exc}") from None


@contextmanager
def command_runtime(
    registry: Registry, *, need_redis: bool = False, require_schema: bool = True, migrate_first: bool = False
) -> Iterator[Runtime]:
    """Settings → embedded or configured servers → runtime (as the runtime login); all stopped afterwards.

    migrate_first: migrate as the owner before, when an owner URL is known or the schema is behind.
    """
    with command_infra(need_redis=need_redis) as (settings, infra):
        runtime = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, registry=registry)
        try:
            if migrate_first and (infra.migration_url or _behind(runtime)):
                migrate_as_owner(infra)
            if require_schema and _behind(runtime):
                raise fail("the database schema is not up to date: run `threadline migrate` first")
            check_runtime_login(runtime.engine, allow_owner=settings.allow_owner_login)
            yield runtime
        except OperatorError as exc:
            raise fail(f"error: {exc}") from None
        finally:
            runtime.close()


def _behind(runtime: Runtime) -> bool:
    return current_revision(runtime.engine) != head_revision(runtime.engine)


def is_tty() -> bool:
    return sys.stdout.isatty()
