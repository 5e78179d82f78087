"""`threadline contacts erase EMAIL`: the erasure service from a shell (audited as cli:<user>)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from core.blobs import BlobStore
from core.cli.context import command_runtime, fail
from core.cli.tenant import tenant_from_option
from core.db.session import tenant_scope
from core.errors import NotFound
from core.registry import Registry
from core.retention.erase import delete_blobs, erase_contact
from core.tenancy.audit import AuditContext


def _cli_actor() -> AuditContext:
    try:
        return AuditContext(f"cli:{getpass.getuser()}")
    except (KeyError, OSError):  # no passwd entry (containers)
        return AuditContext("cli:unknown")


def register(app: typer.Typer, registry: Registry) -> None:
    contacts_app = typer.Typer(help="Customers (contacts).", no_args_is_help=True)
    app.add_typer(contacts_app, name="contacts")

    @contacts_app.command("erase", help="Erase a contact: their tickets, messages, attachments, raw mail and drafts.")
    def erase(
        email: Annotated[str, typer.Argument(help="the contact's email address")],
        tenant: Annotated[str | None, typer.Option(
            "--tenant", help="tenant slug (required when there are several)")] = None,
        yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
    ) -> None:
        if not yes and not typer.confirm(f"Erase everything Threadline holds from {email}? This cannot be undone"):
            raise typer.Exit(1)
        with command_runtime(registry) as rt:
            tenant_id = tenant_from_option(rt.factory, tenant).id
            try:
                with tenant_scope(rt.factory, tenant_id) as session:
                    report = erase_contact(session=session, tenant_id=tenant_id, email=email, audit=_cli_actor(),
                                           erasers=registry.contact_erasers)
            except NotFound as exc:
                raise fail(str(exc)) from None
            blobs = delete_blobs(rt.factory, BlobStore.from_settings(rt.settings), report.blob_candidates)
        typer.echo(f"erased {email}: {report.tickets} ticket(s), {report.messages} message(s), "
                   f"{report.attachments} attachment(s) ({blobs} file(s) removed), {report.raw} raw record(s), "
                   f"{report.drafts} draft(s)")
