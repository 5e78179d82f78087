"""`threadline held list|release`: mail that was ignored or quarantined, for an operator without Slack."""

from __future__ import annotations

import getpass
import json
import uuid
from typing import Annotated, Any, Optional

import typer
from sqlalchemy import select

from core.blobs import BlobStore
from core.cli.context import command_runtime, fail
from core.db.session import system_scope, tenant_scope
from core.errors import UserError
from core.registry import Registry
from core.tenancy.models import Inbox, Tenant
from core.tickets import held
from core.tickets.models import RawInbound
from inbound.ingest.pipeline import IngestDeps, process_raw


def _row(item: held.HeldMail, tenant: str) -> dict[str, Any]:
    return {
        "raw_id": str(item.raw_id), "tenant": tenant, "inbox": item.inbox_address, "status": item.status.value,
        "received_at": item.received_at.isoformat(), "from": item.sender, "subject": item.subject,
        "reason": item.reason, "source": item.source,
    }


def register_held_cli(registry: Registry) -> Any:
    def add(app: typer.Typer) -> None:
        group = typer.Typer(help="Held mail: ignored (automatic, loop, unmatched bounce) or quarantined (rate caps). "
                                 "Nothing is dropped: release a mail to process it as a normal one.",
                            no_args_is_help=True)
        app.add_typer(group, name="held")

        @group.command("list", help="Held mail, newest first, across tenants.")
        def list_(
            inbox: Annotated[Optional[str], typer.Option("--inbox", help="only this inbox address")] = None,
            limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="at most this many per tenant")] = 50,
            as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
        ) -> None:
            rows: list[dict[str, Any]] = []
            with command_runtime(registry) as rt:
                with system_scope(rt.factory) as session:
                    tenants = [(t.id, t.slug) for t in session.execute(select(Tenant).order_by(Tenant.slug)).scalars()]
                    inbox_id = None
                    if inbox:
                        found = session.execute(select(Inbox).where(Inbox.address == inbox.strip().lower())).scalar_one_or_none()
                        if found is None:
                            raise fail(f"no inbox {inbox}", code=2)
                        inbox_id, tenants = found.id, [t for t in tenants if t[0] == found.tenant_id]
                for tenant_id, slug in tenants:
                    with tenant_scope(rt.factory, tenant_id) as session:
                        items = held.list_held(session=session, tenant_id=tenant_id, inbox_id=inbox_id, limit=limit)
                    rows.extend(_row(item, slug) for item in items)
            if as_json:
                for row in rows:
                    typer.echo(json.dumps(row))
                return
            if not rows:
                typer.echo("no held mail")
                return
            typer.echo(f"{'RAW ID':36}  {'RECEIVED':16}  {'STATUS':11}  {'FROM':30}  SUBJECT / REASON")
            for row in rows:
                typer.echo(f"{row['raw_id']:36}  {row['received_at'][:16].replace('T', ' '):16}  {row['status']:11}  "
                           f"{row['from'][:30]:30}  {row['subject'][:60]}")
                typer.echo(f"{'':36}  {'':16}  {'':11}  {'':30}  ↳ {row['reason'][:100]}")

        @group.command("release", help="Process held mail as a normal mail (opens or updates a ticket).")
        def release(
            raw_ids: Annotated[list[str], typer.Argument(help="raw record ids from `threadline held list`")],
            by: Annotated[Optional[str], typer.Option("--by", help="who releases it (default: your login)")] = None,
        ) -> None:
            try:
                ids = [uuid.UUID(r) for r in raw_ids]
            except ValueError:
                raise fail("each RAW_ID must be a raw record id (see `threadline held list`)", code=2) from None
            who = by or f"{getpass.getuser()} (CLI)"
            failures = 0
            with command_runtime(registry) as rt:
                deps = IngestDeps(rt.settings, rt.factory, rt.registry, BlobStore.from_settings(rt.settings))
                for raw_id in ids:
                    with system_scope(rt.factory) as session:
                        tenant_id = session.execute(
                            select(RawInbound.tenant_id).where(RawInbound.id == raw_id)
                        ).scalar_one_or_none()
                    if tenant_id is None:
                        failures += 1
                        typer.echo(json.dumps({"raw_id": str(raw_id), "error": "no such held mail"}))
                        continue
                    try:
                        with tenant_scope(rt.factory, tenant_id) as session:
                            held.release(session=session, tenant_id=tenant_id, raw_id=raw_id, released_by=who)
                    except UserError as exc:
                        failures += 1
                        typer.echo(json.dumps({"raw_id": str(raw_id), "error": str(exc)}))
                        continue
                    # Processed here so the operator sees the result; the queued job then finds it done.
                    result = process_raw(deps, tenant_id=tenant_id, raw_id=raw_id)
                    typer.echo(json.dumps({"raw_id": str(raw_id), "status": result.status.value,
                                           "ticket_number": result.ticket_number, "outcome": result.outcome}))
            if failures:
                raise typer.Exit(1)

    return add
