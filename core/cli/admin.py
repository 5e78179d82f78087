"""`threadline keys|agents ...` and `threadline inbox set`: the admin API's services from a shell.

Every command calls the same core.tenancy service the API calls (validation, conflicts and the
audit entry included); only argument parsing and printing live here. The actor in the audit
log is `cli:<os user>`.
"""

from __future__ import annotations

import getpass
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.cli.context import command_runtime, fail
from core.cli.table import format_table
from core.cli.tenant import tenant_from_option
from core.db.session import system_scope, tenant_scope
from core.errors import InvalidInput, ThreadlineError
from core.registry import Registry
from core.tenancy import agents as agent_service
from core.tenancy import inboxes as inbox_service
from core.tenancy import keys as key_service
from core.tenancy.audit import AuditContext
from core.tenancy.models import AgentRole, ApiKeyScope, ReplyMode
from core.tenancy.schemas import AgentPublic, ApiKeyPublic, InboxPublic
from core.tenancy.service import create_agent
from core.tickets import agent_tokens

TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant slug (required when there are several)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
PlatformOpt = Annotated[bool, typer.Option("--platform", help="platform keys (no tenant) instead of a tenant's")]
EmailArg = Annotated[str, typer.Argument(help="the agent's email address")]


class OnOff(StrEnum):
    ON = "on"
    OFF = "off"


def cli_audit() -> AuditContext:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        user = "unknown"
    return AuditContext(f"cli:{user}")


_audit = cli_audit  # the older name, still imported by core/cli/webhooks.py


def _echo_json(value: BaseModel | list[BaseModel] | dict[str, Any]) -> None:
    if isinstance(value, list):
        typer.echo(json.dumps([v.model_dump(mode="json") for v in value], indent=2))
    elif isinstance(value, BaseModel):
        typer.echo(value.model_dump_json(indent=2))
    else:
        typer.echo(json.dumps(value, indent=2, default=str))


@contextmanager
def _scope(
    registry: Registry, tenant_slug: str | None, *, platform: bool = False
) -> Iterator[tuple[Session, uuid.UUID | None]]:
    """A unit of work for one tenant (RLS on), or system scope for platform keys; errors → exit codes."""
    with command_runtime(registry) as rt:
        tenant_id: uuid.UUID | None = None
        if not platform:
            tenant_id = tenant_from_option(rt.factory, tenant_slug).id
        try:
            scope = tenant_scope(rt.factory, tenant_id) if tenant_id else system_scope(rt.factory)
            with scope as session:
                yield session, tenant_id
        except InvalidInput as exc:
            raise fail(str(exc), code=2) from None
        except ThreadlineError as exc:
            raise fail(str(exc)) from None


def _key_line(k: ApiKeyPublic) -> str:
    used = f"{k.last_used_at:%Y-%m-%d %H:%M}" if k.last_used_at else "never"
    expires = f"{k.expires_at:%Y-%m-%d %H:%M}" if k.expires_at else "-"
    return (f"{k.prefix}  {k.scope.value:<8} {k.status:<8} created {k.created_at:%Y-%m-%d}  used {used:<16} "
            f"expires {expires:<16} {k.name}")


def add_key_commands(app: typer.Typer, registry: Registry) -> None:
    keys = typer.Typer(help="API keys: create (shown once), list, rotate, revoke.", no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create", help="Create an API key and print its secret once.")
    def create(
        name: Annotated[str, typer.Argument(help="what the key is for, e.g. 'reporting'")],
        scope: Annotated[ApiKeyScope, typer.Option("--scope", help="admin, read, or platform (no tenant: manages "
                                                   "tenants)")] = ApiKeyScope.ADMIN,
        expires_in_days: Annotated[int | None, typer.Option("--expires-in-days", min=1)] = None,
        tenant: TenantOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        platform = scope is ApiKeyScope.PLATFORM
        expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
        with _scope(registry, tenant, platform=platform) as (session, tenant_id):
            issued = key_service.issue_api_key(session=session, tenant_id=tenant_id, name=name, scope=scope,
                                               expires_at=expires, audit=cli_audit())
            public, secret = ApiKeyPublic.of(issued.key), issued.secret
        if as_json:
            _echo_json({**public.model_dump(mode="json"), "secret": secret})
            return
        typer.echo(_key_line(public))
        typer.secho(f"API key (shown once, store it now): {secret}", fg="yellow")

    @keys.command("list", help="List keys: prefix, scope, status, created, last used, expiry, name.")
    def list_(tenant: TenantOpt = None, platform: PlatformOpt = False, as_json: JsonOpt = False) -> None:
        with _scope(registry, tenant, platform=platform) as (session, tenant_id):
            rows = [ApiKeyPublic.of(k) for k in
                    key_service.list_api_keys(session=session, tenant_id=tenant_id, after=None, limit=10_000)]
        if as_json:
            _echo_json(list(rows))
            return
        typer.echo("\n".join(_key_line(k) for k in rows) if rows else "no keys")

    @keys.command("rotate", help="Replace a key (by prefix) with a new one, printed once; the old one stops now "
                  "or after --grace-seconds.")
    def rotate(
        prefix: Annotated[str, typer.Argument(help="the key's prefix (see `keys list`)")],
        grace_seconds: Annotated[int, typer.Option("--grace-seconds", min=0, max=7 * 86400)] = 0,
        tenant: TenantOpt = None,
        platform: PlatformOpt = False,
        as_json: JsonOpt = False,
    ) -> None:
        with _scope(registry, tenant, platform=platform) as (session, tenant_id):
            old = key_service.key_by_prefix(session=session, tenant_id=tenant_id, prefix=prefix)
            issued = key_service.rotate_api_key(session=session, tenant_id=tenant_id, key_id=old.id,
                                                grace=timedelta(seconds=grace_seconds), audit=cli_audit())
            public, secret = ApiKeyPublic.of(issued.key), issued.secret
        if as_json:
            _echo_json({**public.model_dump(mode="json"), "secret": secret, "replaces": prefix})
            return
        when = f"in {grace_seconds} s" if grace_seconds else "now"
        typer.echo(f"key {prefix} stops working {when}; its replacement:\n{_key_line(public)}")
        typer.secho(f"API key (shown once, store it now): {secret}", fg="yellow")

    @keys.command("revoke", help="Revoke a key (by prefix) at once.")
    def revoke(
        prefix: Annotated[str, typer.Argument()], tenant: TenantOpt = None, platform: PlatformOpt = False
    ) -> None:
        with _scope(registry, tenant, platform=platform) as (session, tenant_id):
            key = key_service.key_by_prefix(session=session, tenant_id=tenant_id, prefix=prefix)
            key_service.revoke_api_key(session=session, tenant_id=tenant_id, key_id=key.id, audit=cli_audit())
        typer.echo(f"key {prefix} revoked")


def _agent_line(a: AgentPublic) -> str:
    chat = " ".join(x for x in (f"slack:{a.slack_user_id}" if a.slack_user_id else "",
                                f"teams:{a.teams_user_id}" if a.teams_user_id else "") if x)
    state = "active" if a.active else "inactive"
    return f"{a.email or '-':<32} {a.role.value:<10} {state:<8} {a.name}  {chat}".rstrip()


def add_agent_commands(app: typer.Typer, registry: Registry) -> None:
    agents = typer.Typer(help="Agents: add by email, list, change role, deactivate.", no_args_is_help=True)
    app.add_typer(agents, name="agents")

    @agents.command("add", help="Add an agent by email (no chat account needed; Slack links on first use).")
    def add(email: EmailArg, name: Annotated[str | None, typer.Option("--name")] = None,
            role: Annotated[AgentRole, typer.Option("--role")] = AgentRole.AGENT, tenant: TenantOpt = None) -> None:
        with _scope(registry, tenant) as (session, tenant_id):
            assert tenant_id is not None
            agent = create_agent(session=session, tenant_id=tenant_id, name=name or email.split("@")[0], email=email,
                                 role=role, audit=cli_audit())
            line = _agent_line(AgentPublic.model_validate(agent))
        typer.echo(f"added {line}")

    @agents.command("list", help="List agents with role, state and linked Slack/Teams ids.")
    def list_(tenant: TenantOpt = None, as_json: JsonOpt = False,
              include_inactive: Annotated[bool, typer.Option("--all", help="include deactivated agents")] = False,
              ) -> None:
        with _scope(registry, tenant) as (session, tenant_id):
            assert tenant_id is not None
            rows = [AgentPublic.model_validate(a) for a in agent_service.list_agents(
                session=session, tenant_id=tenant_id, active=None if include_inactive else True, after=None,
                limit=10_000)]
        if as_json:
            _echo_json(list(rows))
            return
        typer.echo("\n".join(_agent_line(a) for a in rows) if rows else "no agents")

    @agents.command("role", help="Change an agent's role: admin, agent or read-only.")
    def role(email: EmailArg, new_role: Annotated[AgentRole, typer.Argument(metavar="ROLE")],
             tenant: TenantOpt = None) -> None:
        with _scope(registry, tenant) as (session, tenant_id):
            assert tenant_id is not None
            agent = agent_service.agent_by_email(session=session, tenant_id=tenant_id, email=email)
            agent_service.update_agent(session=session, agent=agent, role=new_role, audit=cli_audit())
        typer.echo(f"{email}: role {new_role.value}")

    @agents.command("deactivate", help="Deactivate an agent (kept for history; `role` does not reactivate).")
    def deactivate(email: EmailArg, tenant: TenantOpt = None) -> None:
        with _scope(registry, tenant) as (session, tenant_id):
            assert tenant_id is not None
            agent = agent_service.agent_by_email(session=session, tenant_id=tenant_id, email=email)
            agent_service.update_agent(session=session, agent=agent, active=False, audit=cli_audit())
        typer.echo(f"{email}: deactivated")

    add_notify_command(agents, registry)


# Short names for `agents notify --on/--off` (the stored names are accepted too).
NOTIFY_NAMES = {"new": "new_tickets", "assigned": "assigned", "replies": "customer_replies", "drafts": "drafts"}


def notify_changes(on: str | None, off: str | None) -> dict[str, bool]:
    """'assigned,replies' / 'new' → {"assigned": True, "customer_replies": True, "new_tickets": False}."""
    changes: dict[str, bool] = {}
    for value, flag in ((on, True), (off, False)):
        for word in filter(None, (w.strip().lower() for w in (value or "").split(","))):
            name = NOTIFY_NAMES.get(word, word)
            if name not in NOTIFY_NAMES.values():
                raise InvalidInput(f"unknown notification {word!r}: use {', '.join(NOTIFY_NAMES)}")
            if changes.get(name, flag) != flag:
                raise InvalidInput(f"{word!r} is both on and off")
            changes[name] = flag
    return changes


def add_notify_command(agents: typer.Typer, registry: Registry) -> None:
    @agents.command("notify", help="Show or change which notification mails an agent gets: new (every new "
                    "ticket), assigned, replies (customer replies on their tickets), drafts.",
                    epilog="Example: threadline agents notify ann@acme.test --on assigned,replies --off new")
    def notify(email: EmailArg,
               on: Annotated[str | None, typer.Option("--on", help="comma-separated: new, assigned, replies, drafts")]
               = None,
               off: Annotated[str | None, typer.Option("--off", help="comma-separated, as --on")] = None,
               tenant: TenantOpt = None, as_json: JsonOpt = False) -> None:
        try:
            changes = notify_changes(on, off)
        except InvalidInput as exc:
            raise fail(str(exc), code=2) from None
        with _scope(registry, tenant) as (session, tenant_id):
            assert tenant_id is not None
            agent = agent_service.agent_by_email(session=session, tenant_id=tenant_id, email=email)
            prefs = (agent_tokens.change_prefs(session=session, agent=agent, changes=changes, audit=cli_audit())
                     if changes else agent_tokens.NotifyPrefs.of(agent)).as_dict()
        if as_json:
            _echo_json(prefs)
            return
        short = {v: k for k, v in NOTIFY_NAMES.items()}
        typer.echo(format_table(["NOTIFICATION", "MAIL"], [[short[k], "on" if v else "off"] for k, v in prefs.items()]))


def add_inbox_set(inbox_app: typer.Typer, registry: Registry) -> None:
    @inbox_app.command("set", help="Change an inbox: reply mode, acknowledgement, its text, Slack or Teams "
                                    "channel, name.",
                       epilog="Example: threadline inbox set help@acme.test --reply-mode explicit --ack on "
                       "--ack-text 'We got your mail and will answer soon.'")
    def inbox_set(
        address: Annotated[str, typer.Argument(help="the inbox's support address")],
        reply_mode: Annotated[ReplyMode | None, typer.Option(
            "--reply-mode", help="thread: a thread reply goes to the customer; explicit: only 'Reply to customer'"
        )] = None,
        ack: Annotated[OnOff | None, typer.Option("--ack", help="send an acknowledgement to new tickets")] = None,
        ack_text: Annotated[str | None, typer.Option("--ack-text", help="its text ('' = the built-in one)")] = None,
        slack_channel: Annotated[str | None, typer.Option("--slack-channel", help="channel id ('' unbinds)")] = None,
        slack_user_group: Annotated[str | None, typer.Option(
            "--slack-user-group", help="only this Slack user group (S…) acts on tickets, not every channel member "
            "('' = channel members again)")] = None,
        teams_channel: Annotated[str | None, typer.Option(
            "--teams-channel", help="Teams channel id (19:…@thread.tacv2; '' unbinds)")] = None,
        teams_team: Annotated[str | None, typer.Option(
            "--teams-team", help="only members of this Teams team (its id, 19:…@thread.tacv2) act on tickets "
            "('' = the channel's team again)")] = None,
        name: Annotated[str | None, typer.Option("--name")] = None,
        tenant: TenantOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        given: dict[str, Any] = {"reply_mode": reply_mode, "name": name, "slack_channel_id": slack_channel,
                                 "slack_user_group_id": slack_user_group, "teams_channel_id": teams_channel,
                                 "teams_team_id": teams_team,
                                 "send_acknowledgement": None if ack is None else ack is OnOff.ON}
        changes = {k: v for k, v in given.items() if v is not None}
        if ack_text is not None:
            changes["acknowledgement_text"] = ack_text or None
        if not changes:
            raise fail("nothing to change: give at least one option (see --help)", code=2)
        with _scope(registry, tenant) as (session, tenant_id):
            assert tenant_id is not None
            inbox = inbox_service.inbox_by_address(session=session, tenant_id=tenant_id, address=address)
            inbox_service.update_inbox(session=session, inbox=inbox, changes=inbox_service.InboxChanges(**changes),
                                       audit=cli_audit())
            public = InboxPublic.model_validate(inbox)
            team = inbox.teams_team_id
        if as_json:
            _echo_json(public)
            return
        typer.echo(f"{public.address}: reply mode {public.reply_mode.value}, acknowledgement "
                   f"{'on' if public.send_acknowledgement else 'off'}"
                   f"{' (custom text)' if public.acknowledgement_text else ''}, "
                   f"slack channel {public.slack_channel_id or '-'}, teams channel {public.teams_channel_id or '-'}"
                   f"{f' (team {team})' if team else ''}, name {public.name}")


def register(app: typer.Typer, registry: Registry) -> None:
    """Call after plugins registered theirs: `inbox set` joins the `inbox` group inbound/ adds, if any."""
    add_key_commands(app, registry)
    add_agent_commands(app, registry)
    inbox_app = next((g.typer_instance for g in app.registered_groups if g.name == "inbox" and g.typer_instance),
                     None)
    if inbox_app is None:
        inbox_app = typer.Typer(help="Support inboxes.", no_args_is_help=True)
        app.add_typer(inbox_app, name="inbox")
    add_inbox_set(inbox_app, registry)
