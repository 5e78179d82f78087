"""`threadline widget set INBOX_ADDRESS …`: an inbox's web chat settings, then the snippet to paste."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from core.cli.context import command_runtime, fail
from core.crypto import SecretBox
from core.db.session import system_scope
from core.errors import UserError
from core.registry import Registry
from core.runtime import Runtime
from core.tenancy.service import inbox_for_address
from inbound.widget.admin import WidgetChanges, snippet, update_widget
from inbound.widget.config import IdentityMode


def set_widget(runtime: Runtime, *, address: str, changes: WidgetChanges) -> str:
    """Apply the changes to the inbox at `address` in one transaction; returns the snippet."""
    with system_scope(runtime.factory) as session:  # an operator command: the inbox is found by address
        inbox = inbox_for_address(session=session, address=address)
        if inbox is None:
            raise UserError(f"no inbox {address.strip().lower()}")
        config = update_widget(session=session, inbox_id=inbox.id, changes=changes,
                               box=SecretBox.from_settings(runtime.settings))
        inbox_id = inbox.id
    if not config.enabled:
        raise UserError("saved, but this inbox has no allowed origin yet: add one with --allowed-origin")
    return snippet(public_url=runtime.settings.public_url, inbox_id=inbox_id, config=config)


def add_commands(app: typer.Typer, registry: Registry) -> None:
    group = typer.Typer(help="The web chat widget of an inbox.", no_args_is_help=True)
    app.add_typer(group, name="widget")

    @group.command("set", help="Change an inbox's web chat settings and print the snippet for its sites.")
    def set_(
        address: Annotated[str, typer.Argument(help="the inbox address, e.g. support@shop.example")],
        allowed_origin: Annotated[list[str] | None, typer.Option(
            "--allowed-origin", help="a site allowed to embed the chat (repeat; replaces the list): "
                                     "https://shop.example or https://*.example.com")] = None,
        identity_mode: Annotated[IdentityMode | None, typer.Option(
            "--identity-mode", help="off, optional or enforce (signed identities only)")] = None,
        identity_secret_stdin: Annotated[bool, typer.Option(
            "--identity-secret-stdin", help="read the identity secret (32+ characters) from stdin")] = False,
        title: Annotated[str | None, typer.Option("--title", help="the chat's title")] = None,
        color: Annotated[str | None, typer.Option("--color", help="accent colour, #0b5fff")] = None,
    ) -> None:
        secret = sys.stdin.readline().strip() if identity_secret_stdin else None
        changes = WidgetChanges(allowed_origins=tuple(allowed_origin) if allowed_origin else None,
                                identity_mode=identity_mode, identity_secret=secret, title=title, color=color)
        with command_runtime(registry) as rt:
            try:
                tag = set_widget(rt, address=address, changes=changes)
            except UserError as exc:
                raise fail(f"error: {exc}", code=2) from None
        typer.echo("Saved. Paste this before </body> on the allowed sites:\n")
        typer.echo(tag)
