"""The `threadline` console script. Plugins add their commands through the registry."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated, Optional

import typer
from sqlalchemy.orm import Session, sessionmaker

from core.cli import admin as admin_cmd
from core.cli import contacts as contacts_cmd
from core.cli import doctor as doctor_cmd
from core.cli import operator as operator_cmd
from core.cli import up as up_cmd
from core.cli import webhooks as webhooks_cmd
from core.cli.context import command_infra, command_runtime, fail, migrate_as_owner
from core.cli.table import format_table
from core.cli.tenant import tenant_from_option
from core.db.session import system_scope, tenant_scope
from core.errors import NotFound, OperatorError
from core.jobs.listing import job_row, list_jobs
from core.jobs.models import OutboxStatus
from core.registry import Registry, load_plugins
from core.tenancy.models import Tenant
from core.tenancy.service import bootstrap as bootstrap_service
from core.tickets import service as tickets
from core.tickets.models import TicketStatus
from core.tickets.schemas import TicketPublic
from core.tickets.views import ticket_detail


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _tenant_option(session_factory: sessionmaker[Session], slug: str | None) -> Tenant:
    return tenant_from_option(session_factory, slug)


TenantOpt = Annotated[Optional[str], typer.Option("--tenant", help="tenant slug (required when there are several)")]


def build_cli(registry: Registry) -> typer.Typer:
    app = typer.Typer(
        name="threadline",
        help="Threadline: an email- and chat-ops helpdesk. Run `threadline up` to start everything.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,  # plain click help: rich's layout tags every flag `<bool>`; sub-groups inherit this
    )

    app.command("up", help="Start everything: embedded Postgres/Redis if unset, API, workers, relay, scheduler, and every plugin component.")(
        lambda: up_cmd.run_up(registry)
    )
    app.command("doctor", help="Check settings and connections; explain problems in plain words.")(
        lambda: doctor_cmd.run_doctor(registry)
    )

    @app.command("migrate", help="Apply database migrations as the owner (DATABASE_MIGRATION_URL) and set up the runtime login (idempotent).")
    def migrate() -> None:
        with command_infra() as (_settings, infra):
            try:
                migrate_as_owner(infra)
            except OperatorError as exc:
                raise fail(f"error: {exc}") from None
            typer.echo("database schema is up to date")

    @app.command("bootstrap", help="Create the first tenant, inbox and admin API key (idempotent; the key is printed once).")
    def bootstrap() -> None:
        with command_runtime(registry, migrate_first=True) as rt:
            with system_scope(rt.factory) as session:
                result = bootstrap_service(
                    session=session, support_address=rt.settings.support_address, slack_channel=rt.settings.slack_channel
                )
                slug, address, key = result.tenant.slug, result.inbox.address, result.api_key_secret
            typer.echo(f"tenant: {slug}\ninbox: {address}")
            if key:
                typer.secho(f"admin API key (shown once, store it now): {key}", fg="yellow")
            else:
                typer.echo("already bootstrapped; the admin key was shown at the first run")

    @app.command("worker", help="Run job workers and the outbox relay.")
    def worker(
        relay: Annotated[bool, typer.Option("--relay/--no-relay", help="also run the outbox relay")] = True,
    ) -> None:
        from core.jobs.worker import serve_worker

        stop = _stop_on_signals()
        with command_runtime(registry, need_redis=True) as rt:
            serve_worker(rt, stop=stop, relay=relay)

    @app.command("scheduler", help="Run periodic maintenance (re-sends outbox rows lost by the queue).")
    def scheduler() -> None:
        from core.jobs.scheduler import serve_scheduler

        stop = _stop_on_signals()
        with command_runtime(registry) as rt:
            serve_scheduler(rt, stop=stop)

    tickets_app = typer.Typer(help="Look at tickets without Slack.", no_args_is_help=True)
    app.add_typer(tickets_app, name="tickets")

    @tickets_app.command("list", help="List tickets, newest first.")
    def tickets_list(
        as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
        status: Annotated[Optional[list[TicketStatus]], typer.Option("--status", help="filter (repeatable)")] = None,
        limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
        tenant: TenantOpt = None,
    ) -> None:
        with command_runtime(registry) as rt:
            t = _tenant_option(rt.factory, tenant)
            with tenant_scope(rt.factory, t.id) as session:
                rows = [TicketPublic.model_validate(x) for x in tickets.list_tickets(session=session, statuses=status, limit=limit)]
        if as_json:
            typer.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
            return
        if not rows:
            typer.echo("no tickets")
            return
        typer.echo(format_table(["NUMBER", "STATUS", "PRIORITY", "CHANNEL", "SUBJECT"],
                                [[f"#{r.number}", r.status.value, r.priority.value, r.channel.value, r.subject[:70]]
                                 for r in rows]))

    @tickets_app.command("show", help="Show one ticket with its messages and timeline.")
    def tickets_show(
        number: int,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        tenant: TenantOpt = None,
    ) -> None:
        with command_runtime(registry) as rt:
            t = _tenant_option(rt.factory, tenant)
            with tenant_scope(rt.factory, t.id) as session:
                try:
                    detail = ticket_detail(session=session, ticket=tickets.get_ticket_by_number(session=session, number=number))
                except NotFound as exc:
                    raise fail(str(exc)) from None
        if as_json:
            typer.echo(detail.model_dump_json(indent=2))
            return
        typer.echo(f"#{detail.number} {detail.subject}\nstatus {detail.status.value}, priority {detail.priority.value}, "
                   f"channel {detail.channel.value}, contact {detail.contact_email or '-'}")
        for m in detail.messages:
            rule = f" [{m.thread_rule}: {m.thread_reason}]" if m.thread_rule else ""
            typer.echo(f"\n--- {m.created_at:%Y-%m-%d %H:%M} {m.direction.value} via {m.source.value} "
                       f"from {m.author_name or '-'}{rule}\n{m.reply_text or m.body_text}")
        typer.echo("\ntimeline:")
        for e in detail.timeline:
            typer.echo(f"  {e.created_at:%Y-%m-%d %H:%M:%S} {e.kind} by {e.actor_kind.value}:{e.actor_label or e.actor_id or '-'} {e.data}")

    operator_cmd.register(app, tickets_app, registry)

    jobs_app = typer.Typer(help="Inspect and retry background jobs (the outbox).", no_args_is_help=True)
    app.add_typer(jobs_app, name="jobs")

    @jobs_app.command("list", help="List jobs, newest first; by default the dead-lettered ones.")
    def jobs_list(
        status: Annotated[OutboxStatus, typer.Option("--status")] = OutboxStatus.DEAD,
        job: Annotated[Optional[str], typer.Option("--job", help="only this job name")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
        limit: Annotated[int, typer.Option(min=1, max=10000)] = 100,
    ) -> None:
        with command_runtime(registry) as rt, system_scope(rt.factory) as session:
            out = [job_row(r) for r in list_jobs(session=session, status=status, job=job, after=None, limit=limit)]
        if as_json:
            typer.echo(json.dumps(out, indent=2))
            return
        if out:
            typer.echo(format_table(["ID", "JOB", "STATUS", "ATTEMPTS", "CREATED", "ERROR"], [
                [r["id"], r["job"], r["status"], r["attempts"], r["created_at"][:19].replace("T", " "),
                 (r["error"] or "")[:100]] for r in out]))
        typer.echo(f"{len(out)} job(s) {status.value}")

    @jobs_app.command("retry", help="Send dead-lettered jobs again (by id, or all with --all-dead).")
    def jobs_retry(
        ids: Annotated[Optional[list[int]], typer.Argument(help="outbox ids")] = None,
        all_dead: Annotated[bool, typer.Option("--all-dead")] = False,
    ) -> None:
        if not ids and not all_dead:
            raise fail("name job ids or pass --all-dead", code=2)
        from core.jobs.admin import retry_jobs

        with command_runtime(registry) as rt:
            count = retry_jobs(factory=rt.factory, ids=ids or None)
        typer.echo(f"{count} job(s) queued again")

    for register in registry.cli_groups:
        register(app)
    admin_cmd.register(app, registry)  # after plugins: `inbox set` joins their `inbox` group
    contacts_cmd.register(app, registry)
    webhooks_cmd.register(app, registry)
    return app


def main() -> None:
    app = build_cli(load_plugins(Registry()))
    app()
