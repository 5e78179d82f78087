"""`threadline up`: one command that runs the whole product under one supervisor."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace

import typer

from core.cli.context import fail, migrate_as_owner, settings_or_exit
from core.db.roles import check_runtime_login
from core.db.session import system_scope
from core.errors import OperatorError
from core.infra.lock import lock_data_dir
from core.infra.stack import Infrastructure, start_infrastructure
from core.logs import configure_logging
from core.registry import Component, Registry
from core.runtime import build_runtime
from core.settings import Settings
from core.tenancy.service import bootstrap

STOP_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux: children get SIGTERM if the supervisor itself is killed, so nothing is orphaned.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


@dataclass
class Child:
    component: Component
    proc: subprocess.Popen[bytes]
    started: float
    restarts: int = 0
    history: list[float] = field(default_factory=list)


def _spawn(component: Component, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", *component.command],
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
        preexec_fn=_die_with_parent,
    )


def run_up(registry: Registry) -> None:
    settings = settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)
    try:
        lock = lock_data_dir(settings.data_dir.resolve())  # before anything starts or prints a banner
    except OperatorError as exc:
        raise fail(f"error: {exc}") from None
    with lock:
        _run_locked(registry, settings)


def _run_locked(registry: Registry, settings: Settings) -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        infra = start_infrastructure(settings)
    except OperatorError as exc:
        raise fail(f"error: {exc}") from None
    children: list[Child] = []
    try:
        _start_all(registry, settings, infra, children, stop)
    except OperatorError as exc:
        raise fail(f"error: {exc}") from None
    finally:
        _stop_children(children)
        infra.stop()
    typer.echo("Threadline stopped.")


def _start_all(
    registry: Registry, settings: Settings, infra: Infrastructure, children: list[Child], stop: threading.Event
) -> None:
    migrate_as_owner(infra)  # as the owner; the components below never see its URL
    runtime = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, registry=registry, pool_size=2)
    try:
        login = check_runtime_login(runtime.engine, allow_owner=settings.allow_owner_login)
        with system_scope(runtime.factory) as session:
            result = bootstrap(session=session, support_address=settings.support_address, slack_channel=settings.slack_channel)
            api_key = result.api_key_secret
    finally:
        runtime.close()
    typer.echo("Threadline is starting")
    where = "embedded, data in " + str(settings.data_dir.resolve()) if settings.embedded_database else "DATABASE_URL"
    typer.echo(f"  postgres    {where}, components log in as {login.name}")
    typer.echo(f"  redis       {'embedded' if settings.embedded_redis else 'REDIS_URL'}")
    if api_key:
        typer.secho(f"  admin API key (shown once, store it now): {api_key}", fg="yellow")
    env = dict(os.environ)
    env["DATABASE_URL"] = infra.database_url
    env.pop("DATABASE_MIGRATION_URL", None)  # least privilege: components never hold the owner's password
    if infra.redis_url:
        env["REDIS_URL"] = infra.redis_url
    env["THREADLINE_DATA_DIR"] = str(settings.data_dir.resolve())
    components = sorted(
        (c for c in registry.components.values() if c.enabled(settings)), key=lambda c: (c.order, c.name)
    )
    for component in components:
        for copy in _copies(component, settings):
            children.append(Child(copy, _spawn(copy, env), time.monotonic()))
        extra = f" x {len(_copies(component, settings))} processes" if component.name == "worker" else ""
        typer.echo(f"  {component.name:<11} {component.describe(settings)}{extra}")
    typer.echo("Press Ctrl-C to stop.")
    _supervise(children, env, stop)


def worker_processes(settings: Settings) -> int:
    """THREADLINE_WORKER_PROCESSES, or one per core: one Python process parses on one core only."""
    return settings.worker_processes or max(1, os.cpu_count() or 1)


def _copies(component: Component, settings: Settings) -> list[Component]:
    """The worker runs once per core; only the first copy relays the outbox (more relays would
    only add idle polling: one relay hands out hundreds of rows a second)."""
    if component.name != "worker":
        return [component]
    extra = replace(component, name="worker", command=(*component.command, "--no-relay"))
    return [component] + [extra] * (worker_processes(settings) - 1)


def _supervise(children: list[Child], env: dict[str, str], stop: threading.Event) -> None:
    """Restart a component that dies (with backoff); give up on one that keeps crashing."""
    while not stop.wait(0.5):
        for child in children:
            code = child.proc.poll()
            if code is None:
                continue
            now = time.monotonic()
            child.history = [t for t in child.history if now - t < 60] + [now]
            if len(child.history) > 5:
                typer.secho(f"{child.component.name} keeps exiting (code {code}); stopping Threadline", fg="red", err=True)
                stop.set()
                raise typer.Exit(1)
            typer.secho(f"{child.component.name} exited with code {code}; restarting", fg="yellow", err=True)
            time.sleep(min(2 ** len(child.history) * 0.25, 5))
            child.proc = _spawn(child.component, env)
            child.restarts += 1


def _stop_children(children: list[Child]) -> None:
    for child in children:
        if child.proc.poll() is None:
            child.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.proc.kill()
            child.proc.wait()
