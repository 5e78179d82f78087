"""`threadline doctor`: check settings and connections, explain problems in plain words."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Callable

import redis
import typer
from pydantic import ValidationError
from sqlalchemy import text

from core.db.migrate import current_revision, head_revision
from core.db.roles import LoginInfo, inspect_login
from core.db.session import make_engine
from core.infra.lock import lock_holder
from core.infra.stack import Infrastructure, infrastructure
from core.nameservers import display, parse_nameservers, probe
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
    width = max(map(len, SETTING_DOCS))
    for name, doc in SETTING_DOCS.items():
        state = "set" if os.environ.get(name) else "not set"
        typer.echo(f"  {state:<7} {name:<{width}}  {doc}")
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
                if infra.started_embedded_postgres:
                    typer.echo("  note  doctor started the embedded Postgres for this check: no `threadline up` was using it")
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
    _check_dns(settings, ok, bad)
    enabled = sorted(name for name, c in registry.components.items() if c.enabled(settings))
    typer.echo(f"Components (started by `threadline up` with these settings): {', '.join(enabled) or 'none'}")
    typer.echo("Running")
    _check_running(settings, enabled, ok, bad)
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


def _check_dns(settings: Settings, ok: Callable[[str], None], bad: Callable[[str], None]) -> None:
    """One query to each THREADLINE_DNS_SERVERS server: SPF/DKIM/DMARC of every inbound mail ask them."""
    servers = parse_nameservers(settings.dns_servers)  # the settings model refused a malformed value
    if not servers:
        typer.echo("  note  THREADLINE_DNS_SERVERS is unset: mail authentication asks the system's resolver")
        return
    for result in (probe(server) for server in servers):
        if result.answered:
            ok(f"DNS server {display(result.server)} answers (THREADLINE_DNS_SERVERS)")
        else:
            bad(f"DNS server {display(result.server)} does not answer: {result.detail} "
                "(THREADLINE_DNS_SERVERS; SPF/DKIM/DMARC checks of inbound mail will fail)")


def _local(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _api_answers(settings: Settings) -> bool:
    try:
        with urllib.request.urlopen(f"http://{_local(settings.api_host)}:{settings.api_port}/healthz", timeout=2) as res:
            return bool(res.status == 200)
    except OSError:
        return False


def _smtp_answers(settings: Settings) -> bool:
    """A 220 greeting (RFC 5321 §4.2) from our SMTP port; QUIT politely afterwards."""
    try:
        with socket.create_connection((_local(settings.smtp_host), settings.smtp_port), timeout=2) as sock:
            greeting = sock.recv(512)
            sock.sendall(b"QUIT\r\n")
            return greeting.startswith(b"220")
    except OSError:
        return False


def _check_running(settings: Settings, enabled: list[str], ok: Callable[[str], None], bad: Callable[[str], None]) -> None:
    """Is Threadline running: an `up` holding the data dir, and do the API and SMTP ports answer?"""
    data_dir = settings.data_dir.resolve()
    holder = lock_holder(data_dir)
    probes = {"api": (f"API on {settings.api_host}:{settings.api_port}", _api_answers),
              "smtp": (f"SMTP on {settings.smtp_host}:{settings.smtp_port}", _smtp_answers)}
    answers = {name: (label, probe(settings)) for name, (label, probe) in probes.items() if name in enabled}
    if holder is None and not any(up for _, up in answers.values()):
        bad(f"Threadline is not running (no `threadline up` on {data_dir}, "
            f"{' and '.join(label for label, _ in answers.values()) or 'no port'} not answering): start it with `threadline up`")
        return
    if holder is not None:
        ok(f"`threadline up` is running on {data_dir} (pid {holder})")
    else:
        typer.echo(f"  note  no `threadline up` on {data_dir}: components run separately (e.g. compose)")
    for label, up in answers.values():
        if up:
            ok(f"{label} answers")
        else:
            bad(f"{label} does not answer: see the log of `threadline up` (or start that component)")
