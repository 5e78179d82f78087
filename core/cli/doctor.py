"""`threadline doctor`: check settings and connections, explain problems in plain words."""

from __future__ import annotations

import os
from collections.abc import Callable

import redis
import typer
from pydantic import ValidationError
from sqlalchemy import text

from core.db.migrate import current_revision, head_revision
from core.db.roles import LoginInfo, inspect_login
from core.db.session import make_engine
from core.infra.stack import Infrastructure, infrastructure
from core.registry import Registry
from core.settings import SETTING_DOCS, Settings, load_settings


def run_doctor(registry: Registry) -> None:
    problems = 0

    def ok(msg: str) -> None:
        typer.secho(f"  ok    {msg}", fg="green")

    def bad(msg: str) -> None:
        nonlocal problems
        problems += 1
        typer.secho(f"  FAIL  {msg}", fg="red")

    typer.echo("Settings")
    try:
        settings = load_settings()
    except ValidationError as exc:
        for err in exc.errors():
            bad(f"{str(err.get('loc', ['?'])[0]).upper()}: {err['msg']}")
        raise typer.Exit(1) from None
    for name, doc in SETTING_DOCS.items():
        state = "set" if os.environ.get(name) else "default"
        typer.echo(f"  {state:<7} {name:<30} {doc}")
    if settings.slack_app_token and not settings.slack_bot_token:
        bad("SLACK_APP_TOKEN is set but SLACK_BOT_TOKEN is not: Socket Mode needs both")
    if settings.slack_bot_token and not (settings.slack_signing_secret or settings.slack_app_token):
        bad("SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN (Socket Mode)")
    if bool(settings.teams_app_id) != bool(settings.teams_app_password):
        bad("Teams needs both TEAMS_APP_ID and TEAMS_APP_PASSWORD (the Azure bot's app id and client secret)")
    if not settings.outbound_smtp_url:
        typer.echo("  note  THREADLINE_OUTBOUND_SMTP_URL is unset: replies to email customers cannot be sent")

    typer.echo("Connections")
    try:
        with infrastructure(settings) as infra:
            where = "embedded Postgres" if settings.embedded_database else "DATABASE_URL"
            engine = make_engine(infra.owner_url, pool_size=1)
            try:
                with engine.connect() as conn:
                    version = conn.execute(text("SHOW server_version")).scalar()
                    has_vector = conn.execute(
                        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'")
                    ).scalar()
                ok(f"{where} answers (PostgreSQL {version})")
                if has_vector:
                    ok("pgvector is available")
                else:
                    bad("the pgvector extension is not installed on this Postgres (use the pgvector/pgvector image)")
                cur, head = current_revision(engine), head_revision(engine)
                if cur == head:
                    ok(f"schema is current ({cur})")
                else:
                    bad(f"schema is at {cur or 'nothing'}, code expects {head}: run `threadline migrate`")
            except Exception as exc:  # doctor reports, it does not crash
                bad(f"cannot reach {where}: {type(exc).__name__}: {exc}")
            finally:
                engine.dispose()
            _check_logins(settings, infra, ok, bad)
            try:
                redis.Redis.from_url(infra.redis_url or "", socket_timeout=3, socket_connect_timeout=3).ping()
                ok(f"{'embedded Redis' if settings.embedded_redis else 'REDIS_URL'} answers")
            except (redis.RedisError, OSError, ValueError) as exc:
                bad(f"cannot reach Redis: {type(exc).__name__}: {exc}")
    except Exception as exc:  # embedded servers failed to start, or similar
        bad(f"could not start or reach the database/queue: {exc}")
    typer.echo(f"Components: {', '.join(sorted(registry.components)) or 'none'}")
    if problems:
        typer.secho(f"{problems} problem(s) found", fg="red")
        raise typer.Exit(1)
    typer.secho("all checks passed", fg="green")


def _login(url: str) -> LoginInfo:
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as conn:
            return inspect_login(conn)
    finally:
        engine.dispose()


def _check_logins(settings: Settings, infra: Infrastructure, ok: Callable[[str], None], bad: Callable[[str], None]) -> None:
    """Say which role each URL logs in as: components want the runtime login, migrations the owner."""
    embedded = settings.embedded_database
    runtime_name = "embedded runtime login" if embedded else "DATABASE_URL"
    try:
        runtime = _login(infra.database_url)
    except Exception as exc:  # e.g. the login does not exist before the first migrate
        bad(f"{runtime_name} cannot log in ({type(exc).__name__}): run `threadline migrate` to create the runtime login")
    else:
        if runtime.is_runtime:
            ok(f"{runtime_name} logs in as {runtime.describe()}")
        elif runtime.is_owner and settings.allow_owner_login:
            typer.echo(f"  note  {runtime_name} logs in as {runtime.describe()}; allowed by THREADLINE_ALLOW_OWNER_LOGIN")
        else:
            bad(f"{runtime_name} logs in as {runtime.describe()}: components refuse an owner; "
                "give them the runtime login and set DATABASE_MIGRATION_URL to the owner")
    if infra.migration_url is None:
        typer.echo("  note  DATABASE_MIGRATION_URL is unset: `threadline migrate` uses DATABASE_URL")
        return
    name = "embedded superuser" if embedded else "DATABASE_MIGRATION_URL"
    try:
        owner = _login(infra.migration_url)
    except Exception as exc:  # doctor reports, it does not crash
        bad(f"{name} cannot log in: {type(exc).__name__}: {exc}")
        return
    if owner.is_owner:
        ok(f"{name} (migrations) logs in as {owner.describe()}")
    else:
        bad(f"{name} logs in as {owner.describe()}: migrations need the owner of the schema")
