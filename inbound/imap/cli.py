"""`threadline imap` and `threadline inbox ...`: run the poller, manage inboxes and their IMAP accounts."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.cli.context import command_runtime, fail
from core.cli.table import format_table
from core.cli.tenant import tenant_from_option
from core.crypto import SecretBox
from core.db.session import system_scope
from core.errors import ThreadlineError
from core.registry import Registry
from core.tenancy.imap_models import ImapAccount, ImapAfterAction, ImapTls
from core.tenancy.models import Inbox, Tenant
from core.tenancy.service import create_inbox, inbox_for_address
from inbound.imap import accounts
from inbound.imap.poller import IDLE_MAX_SECONDS
from inbound.imap.service import AccountConfig, PollerOptions, serve_imap
from inbound.imap.session import describe_error, open_client
from inbound.imap.session import select as select_folder


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _tenant(factory: sessionmaker[Session], slug: str | None) -> Tenant:
    return tenant_from_option(factory, slug)  # the only tenant, or --tenant when there are several


def _read_password(password_stdin: bool, password_env: str | None) -> str | None:
    if password_stdin and password_env:
        raise fail("give either --password-stdin or --password-env, not both", code=2)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise fail(f"environment variable {password_env} is unset or empty", code=2)
    else:
        return None
    if not password:
        raise fail("the password read from standard input is empty", code=2)
    return password


def _account_line(account: ImapAccount | None) -> str:
    if account is None:
        return "imap: -"
    state = "enabled" if account.enabled else "disabled"
    after = f"{account.after_action.value}" + (f" to {account.move_to}" if account.move_to else "")
    line = (f"imap: {account.username}@{account.host}:{account.port} ({account.tls.value}) folder {account.folder}, "
            f"after {after}, {state}, last uid {account.last_uid}")
    if account.last_polled_at:
        line += f", polled {account.last_polled_at:%Y-%m-%d %H:%M:%S}"
    if account.last_error:
        line += f"\n      last error: {account.last_error}"
    return line


def _account_json(account: ImapAccount | None) -> dict[str, Any] | None:
    if account is None:
        return None
    return {
        "host": account.host, "port": account.port, "tls": account.tls.value, "user": account.username,
        "folder": account.folder, "after": account.after_action.value, "move_to": account.move_to,
        "enabled": account.enabled, "uidvalidity": account.uidvalidity, "last_uid": account.last_uid,
        "last_polled_at": account.last_polled_at.isoformat() if account.last_polled_at else None,
        "last_error": account.last_error,
    }


TenantOpt = Annotated[str | None, typer.Option("--tenant", help="tenant slug (required when there are several)")]
AddressArg = Annotated[str, typer.Argument(help="the inbox's support address, e.g. help@acme.test")]


def add_commands(app: typer.Typer, registry: Registry) -> None:
    @app.command("imap", help="Poll every enabled IMAP account into its inbox until Ctrl-C / SIGTERM. "
                 "Uses IDLE where the server offers it, else polls; reconnects with backoff.")
    def imap(
        poll_seconds: Annotated[float, typer.Option(min=1, help="poll interval for servers without IDLE")] = 60.0,
        idle_seconds: Annotated[float, typer.Option(min=1, max=29 * 60, help="re-issue IDLE after this long "
                                                    "(RFC 2177: at most 29 minutes)")] = IDLE_MAX_SECONDS,
    ) -> None:
        stop = _stop_on_signals()
        with command_runtime(registry) as rt:
            serve_imap(rt, stop=stop, options=PollerOptions(poll_seconds=poll_seconds, idle_seconds=idle_seconds))

    inbox_app = typer.Typer(help="Support inboxes (addresses) and the IMAP accounts polled into them.",
                            no_args_is_help=True)
    app.add_typer(inbox_app, name="inbox")

    @inbox_app.command("list", help="List inboxes with their IMAP account and its last poll or error.")
    def inbox_list(
        as_json: Annotated[bool, typer.Option("--json", help="one JSON array")] = False,
        tenant: Annotated[str | None, typer.Option("--tenant", help="only this tenant (default: all)")] = None,
    ) -> None:
        with command_runtime(registry) as rt, system_scope(rt.factory) as session:
            stmt = (select(Inbox, Tenant.slug, ImapAccount).join(Tenant, Tenant.id == Inbox.tenant_id)
                    .outerjoin(ImapAccount, ImapAccount.inbox_id == Inbox.id).order_by(Tenant.slug, Inbox.address))
            if tenant:
                stmt = stmt.where(Tenant.slug == tenant_from_option(rt.factory, tenant).slug)
            rows = session.execute(stmt).all()
            out = [{"tenant": slug, "address": inbox.address, "name": inbox.name,
                    "slack_channel": inbox.slack_channel_id, "imap": _account_json(acc)} for inbox, slug, acc in rows]
            table = format_table(["TENANT", "ADDRESS", "NAME", "SLACK"],
                                 [[slug, inbox.address, inbox.name, inbox.slack_channel_id or "-"]
                                  for inbox, slug, _ in rows]).splitlines()
            lines = [table[0]] + [f"{row}\n      {_account_line(acc)}" for row, (_, _, acc) in zip(table[1:], rows)]
        if as_json:
            typer.echo(json.dumps(out, indent=2))
            return
        typer.echo("\n".join(lines) if rows else "no inboxes")

    @inbox_app.command("add", help="Create an inbox: a support address that mail (SMTP or IMAP) arrives for.")
    def inbox_add(
        address: AddressArg,
        name: Annotated[str | None, typer.Option("--name", help="display name (default: the address)")] = None,
        slack_channel: Annotated[str | None, typer.Option("--slack-channel", help="Slack channel id for its "
                                                             "tickets")] = None,
        tenant: TenantOpt = None,
    ) -> None:
        with command_runtime(registry) as rt:
            t = _tenant(rt.factory, tenant)
            with system_scope(rt.factory) as session:
                if inbox_for_address(session=session, address=address):
                    raise fail(f"an inbox for {address.strip().lower()} already exists")
                try:
                    inbox = create_inbox(session=session, tenant_id=t.id, address=address, name=name,
                                         slack_channel_id=slack_channel)
                except ThreadlineError as exc:
                    raise fail(str(exc), code=2) from None
                created = inbox.address
        typer.echo(f"inbox {created} created for tenant {t.slug}")

    @inbox_app.command("imap", help="Set (or change) the IMAP account polled into an inbox. The password is read "
                       "from stdin or an environment variable, stored encrypted, never printed.",
                       epilog="Example: printf '%s\\n' \"$PW\" | threadline inbox imap help@acme.test "
                       "--host imap.acme.test --user help@acme.test --password-stdin --after move --move-to Done")
    def inbox_imap(
        address: AddressArg,
        host: Annotated[str, typer.Option("--host", help="IMAP server host name")],
        user: Annotated[str, typer.Option("--user", help="login user name")],
        tls: Annotated[ImapTls, typer.Option("--tls", help="ssl (implicit TLS, port 993), starttls (port 143) "
                                             "or none (loopback/tests only)")] = ImapTls.SSL,
        port: Annotated[int | None, typer.Option("--port", help="default: 993 for ssl, 143 otherwise")] = None,
        password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from the first "
                                                     "line of standard input")] = False,
        password_env: Annotated[str | None, typer.Option("--password-env", metavar="VAR",
                                                            help="read the password from this environment "
                                                            "variable")] = None,
        folder: Annotated[str, typer.Option("--folder", help="folder to take mail from")] = "INBOX",
        after: Annotated[ImapAfterAction, typer.Option("--after", help="after a mail is safely stored: flag it "
                                                       "($Threadline keyword), move it (--move-to) or delete "
                                                       "it")] = ImapAfterAction.FLAG,
        move_to: Annotated[str | None, typer.Option("--move-to", help="target folder for --after move")] = None,
    ) -> None:
        password = _read_password(password_stdin, password_env)
        spec = accounts.AccountSpec(host=host.strip(), port=port or accounts.DEFAULT_PORTS[tls], tls=tls,
                                    username=user, folder=folder, after_action=after, move_to=move_to)
        with command_runtime(registry) as rt:
            encrypted = SecretBox.from_settings(rt.settings).encrypt(password) if password is not None else None
            with system_scope(rt.factory) as session:
                inbox = inbox_for_address(session=session, address=address)
                if inbox is None:
                    raise fail(f"no inbox for {address}: create it with `threadline inbox add {address}`")
                try:
                    _, created = accounts.upsert_account(session=session, inbox=inbox, spec=spec,
                                                         password_encrypted=encrypted)
                except ThreadlineError as exc:
                    raise fail(str(exc), code=2) from None
        verb = "created" if created else "updated"
        typer.echo(f"IMAP account for {address} {verb}: {spec.username}@{spec.host}:{spec.port} ({spec.tls.value}), "
                   f"folder {spec.folder}, after {spec.after_action.value}"
                   + (f" to {spec.move_to}" if spec.move_to else "")
                   + f". Check it with `threadline inbox imap-test {address}`.")

    @inbox_app.command("imap-disable", help="Stop polling an inbox's IMAP account (`inbox imap` enables it again).")
    def inbox_imap_disable(address: AddressArg) -> None:
        with command_runtime(registry) as rt, system_scope(rt.factory) as session:
            inbox = inbox_for_address(session=session, address=address)
            if inbox is None:
                raise fail(f"no inbox for {address}")
            try:
                accounts.disable_account(session=session, inbox_id=inbox.id)
            except ThreadlineError as exc:
                raise fail(f"{address}: {exc}") from None
        typer.echo(f"IMAP polling for {address} disabled")

    @inbox_app.command("imap-test", help="Connect to an inbox's IMAP account, log in, open its folders; report in "
                       "plain words.")
    def inbox_imap_test(address: AddressArg) -> None:
        with command_runtime(registry) as rt:
            with system_scope(rt.factory) as session:
                inbox = inbox_for_address(session=session, address=address)
                row = accounts.account_for_inbox(session=session, inbox_id=inbox.id) if inbox else None
                if row is None:
                    raise fail(f"{address} has no IMAP account: set one with `threadline inbox imap {address} ...`")
                try:
                    account = AccountConfig.from_row(row, box=SecretBox.from_settings(rt.settings))
                except ThreadlineError as exc:
                    raise fail(str(exc)) from None
        typer.echo(_test_account(account))


def _test_account(account: AccountConfig) -> str:
    endpoint = account.endpoint
    try:
        with open_client(endpoint, ssl_context=None, timeout=15) as client:
            lines = [f"connected to {endpoint.where()} ({endpoint.tls.value}) and logged in as {endpoint.username}"]
            folder = select_folder(client, account.folder)
            lines.append(f"folder {folder.name}: {folder.exists} mail(s), UIDVALIDITY {folder.uidvalidity}; "
                         f"Threadline has taken UIDs up to {account.checkpoint.last_uid}")
            if account.move_to:
                exists = client.folder_exists(account.move_to)
                lines.append(f"move-to folder {account.move_to}: {'exists' if exists else 'MISSING: create it first'}")
                if not exists:
                    raise fail("\n".join(lines))
            idle = "yes (new mail arrives at once)" if client.has_capability("IDLE") else "no (polled every minute)"
            lines.append(f"IDLE: {idle}")
            return "\n".join(lines)
    except typer.Exit:
        raise
    except Exception as exc:  # a diagnostic command: every failure is reported in words, exit 1
        raise fail(f"IMAP test of {endpoint.where()} failed: {describe_error(exc, endpoint=endpoint)}") from None
