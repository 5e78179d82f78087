"""Shared plumbing for commands: settings, logging, infrastructure and runtime."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from pydantic import ValidationError

from core.db.migrate import current_revision, head_revision
from core.errors import OperatorError
from core.infra.stack import infrastructure
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


@contextmanager
def command_runtime(registry: Registry, *, need_redis: bool = False, require_schema: bool = True) -> Iterator[Runtime]:
    """Settings → embedded or configured servers → runtime; everything stopped afterwards."""
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    try:
        with infrastructure(settings, need_redis=need_redis) as infra:
            runtime = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, registry=registry)
            try:
                if require_schema and current_revision(runtime.engine) != head_revision(runtime.engine):
                    raise fail("the database schema is not up to date: run `threadline migrate` first")
                yield runtime
            finally:
                runtime.close()
    except OperatorError as exc:
        raise fail(f"error: {exc}") from None


def is_tty() -> bool:
    return sys.stdout.isatty()
