"""`threadline slack ...`: bind Slack workspaces to tenants (OAuth installs)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session, sessionmaker

from bots.slack.installations import INSTALL_LINK_TTL, disconnect, install_url, oauth_configured
from core.cli.context import command_runtime, fail
from core.cli.tenant import tenant_from_option
from core.registry import Registry
from core.tenancy.models import Tenant

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant slug (required when there are several)")]


def _tenant(factory: sessionmaker[Session], slug: str | None) -> Tenant:
    return tenant_from_option(factory, slug)  # the only tenant, or --tenant when there are several


def add_slack_cli(app: Any, registry: Registry) -> None:
    slack = typer.Typer(help="Slack workspaces installed over OAuth, one per tenant.", no_args_is_help=True)
    app.add_typer(slack, name="slack")
    hours = int(INSTALL_LINK_TTL.total_seconds() // 3600)

    @slack.command("install-link",
                   help=f"Print a link that installs Threadline into a Slack workspace for a tenant (valid {hours} h).")
    def install_link(tenant: TenantOpt = None) -> None:
        with command_runtime(registry) as rt:
            if not oauth_configured(rt.settings):
                raise fail("SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are not set: installing over OAuth needs them")
            if rt.settings.slack_bot_token is not None:
                typer.secho("note: SLACK_BOT_TOKEN is set, so every tenant uses that workspace's bot instead",
                            fg="yellow", err=True)
            typer.echo(install_url(rt.settings, tenant_id=_tenant(rt.factory, tenant).id))

    @slack.command("disconnect", help="Stop using the tenant's Slack workspace (remove the app in Slack too).")
    def disconnect_cmd(tenant: TenantOpt = None) -> None:
        with command_runtime(registry) as rt:
            teams = disconnect(rt.factory, tenant_id=_tenant(rt.factory, tenant).id)
        typer.echo(f"disconnected: {', '.join(teams)}" if teams else "no Slack workspace was connected")
