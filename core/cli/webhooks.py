"""`threadline webhooks list|create|disable|deliveries`: the webhook service from a shell.

The same service calls as the admin API (core/webhooks/service.py: URL checks, sealed secret,
audit entry as cli:<user>); only argument parsing and printing live here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from core.cli.admin import JsonOpt, TenantOpt, _audit, _echo_json
from core.cli.context import command_runtime, fail
from core.cli.table import format_table
from core.cli.tenant import tenant_from_option
from core.crypto import SecretBox
from core.db.session import tenant_scope
from core.errors import InvalidInput, ThreadlineError
from core.registry import Registry
from core.settings import Settings
from core.webhooks import service
from core.webhooks.schemas import WebhookCreated, WebhookDeliveryPublic, WebhookEvent, WebhookPublic

IdArg = Annotated[uuid.UUID, typer.Argument(help="the subscription's id (see `webhooks list`)")]


@contextmanager
def _tenant_work(registry: Registry, slug: str | None) -> Iterator[tuple[Session, uuid.UUID, Settings]]:
    """One unit of work for the tenant; service errors become exit codes (2: the input was refused)."""
    with command_runtime(registry) as rt:
        tenant_id = tenant_from_option(rt.factory, slug).id
        try:
            with tenant_scope(rt.factory, tenant_id) as session:
                yield session, tenant_id, rt.settings
        except InvalidInput as exc:
            raise fail(str(exc), code=2) from None
        except ThreadlineError as exc:
            raise fail(str(exc)) from None


def _state(w: WebhookPublic) -> str:
    return "active" if w.active else f"disabled ({w.disabled_reason})" if w.disabled_reason else "disabled"


def subscriptions_table(rows: list[WebhookPublic]) -> str:
    return format_table(["ID", "URL", "EVENTS", "STATE", "FAILURES", "CREATED"], [
        [w.id, w.url, ",".join(w.events), _state(w), w.consecutive_failures, f"{w.created_at:%Y-%m-%d %H:%M}"]
        for w in rows])


def deliveries_table(rows: list[WebhookDeliveryPublic]) -> str:
    return format_table(["TIME", "EVENT", "EVENT ID", "ATTEMPT", "RESULT", "HTTP", "MS", "ERROR"], [
        [f"{d.created_at:%Y-%m-%d %H:%M:%S}", d.event_kind, d.event_id, d.attempt,
         "delivered" if d.delivered else "failed", d.status_code or "-", d.duration_ms, d.error or ""]
        for d in rows])


def register(app: typer.Typer, registry: Registry) -> None:
    hooks = typer.Typer(help="Webhook subscriptions: list, create (secret shown once), disable, deliveries.",
                        no_args_is_help=True)
    app.add_typer(hooks, name="webhooks")

    @hooks.command("list", help="List the tenant's subscriptions: id, URL, events, state, failures in a row.")
    def list_(tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        with _tenant_work(registry, tenant) as (session, tenant_id, _):
            rows = [WebhookPublic.model_validate(s) for s in
                    service.list_subscriptions(session=session, tenant_id=tenant_id, after=None, limit=10_000)]
        if as_json:
            _echo_json(list(rows))
            return
        typer.echo(subscriptions_table(rows) if rows else "no webhook subscriptions")

    @hooks.command("create", help="Subscribe a URL to events; prints the signing secret once.")
    def create(
        url: Annotated[str, typer.Argument(help="http(s) URL that receives signed POSTs")],
        events: Annotated[list[WebhookEvent], typer.Option("--event", help="repeat for each event")],
        description: Annotated[str, typer.Option("--description", max=200)] = "",
        tenant: TenantOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with _tenant_work(registry, tenant) as (session, tenant_id, settings):
            created = service.create_subscription(
                session=session, tenant_id=tenant_id, url=url, events=[e.value for e in events],
                description=description, box=SecretBox.from_settings(settings),
                allow_private=settings.webhook_allow_private, audit=_audit())
            public = WebhookCreated.model_validate({**WebhookPublic.model_validate(created.subscription).model_dump(),
                                                    "secret": created.secret})
        if as_json:
            _echo_json(public)
            return
        typer.echo(subscriptions_table([public]))
        typer.secho(f"Signing secret (shown once, store it now): {public.secret}", fg="yellow")

    @hooks.command("disable", help="Stop delivering to a subscription (the API's PATCH active=true re-enables it).")
    def disable(subscription_id: IdArg, tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        with _tenant_work(registry, tenant) as (session, tenant_id, settings):
            sub = service.get_subscription(session=session, tenant_id=tenant_id, subscription_id=subscription_id,
                                           lock=True)
            service.update_subscription(session=session, sub=sub, changes=service.SubscriptionChanges(active=False),
                                        allow_private=settings.webhook_allow_private, audit=_audit())
            public = WebhookPublic.model_validate(sub)
        if as_json:
            _echo_json(public)
            return
        typer.echo(f"{public.id} {public.url}: disabled")

    @hooks.command("deliveries", help="The delivery log of a subscription, newest first.")
    def deliveries(subscription_id: IdArg, tenant: TenantOpt = None, as_json: JsonOpt = False,
                   limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20) -> None:
        with _tenant_work(registry, tenant) as (session, tenant_id, _):
            service.get_subscription(session=session, tenant_id=tenant_id, subscription_id=subscription_id)
            rows = [WebhookDeliveryPublic.model_validate(d) for d in service.list_deliveries(
                session=session, tenant_id=tenant_id, subscription_id=subscription_id, after=None, limit=limit)]
        if as_json:
            _echo_json(list(rows))
            return
        typer.echo(deliveries_table(rows) if rows else "no deliveries yet")
