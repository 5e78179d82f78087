"""`threadline raw list`: every stored inbound mail with what became of it, for an operator.

Held mail is only what waits for a decision; this lists everything, so a mail that was
answered 250 and then ignored (a duplicate, a loop) is never invisible.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer
from sqlalchemy import select

from core.cli.context import command_runtime
from core.cli.table import format_table
from core.db.session import system_scope, tenant_scope
from core.registry import Registry
from core.tenancy.models import Tenant
from core.tickets.models import RawInbound, RawInboundStatus


def raw_row(raw: RawInbound, tenant: str) -> dict[str, Any]:
    """One raw record as the listing shows it (pure: no I/O)."""
    envelope, summary = raw.envelope or {}, raw.summary or {}
    repeats = int(envelope.get("redeliveries") or 0)
    reason = raw.error if raw.status is RawInboundStatus.FAILED else raw.outcome
    return {
        "raw_id": str(raw.id), "tenant": tenant, "source": raw.source, "status": raw.status.value,
        "received_at": raw.received_at.isoformat(), "from": summary.get("from") or envelope.get("mail_from") or "",
        "subject": summary.get("subject") or "", "outcome": reason or "",
        "redeliveries": repeats, "last_redelivery_at": envelope.get("last_redelivery_at"),
    }


def _outcome_cell(row: dict[str, Any]) -> str:
    text = row["outcome"] or "(waiting to be processed)"
    if row["redeliveries"]:
        text += f"; delivered again {row['redeliveries']}x (ignored as duplicates)"
    return text


def register_raw_cli(registry: Registry) -> Any:
    def add(app: typer.Typer) -> None:
        group = typer.Typer(help="Stored inbound mail (raw records) and what became of each.", no_args_is_help=True)
        app.add_typer(group, name="raw")

        @group.command("list", help="Stored inbound mail, newest first, across tenants, with its outcome.")
        def list_(
            status: Annotated[
                Optional[list[RawInboundStatus]], typer.Option("--status", help="filter (repeatable)")  # noqa: UP045
            ] = None,
            limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="at most this many per tenant")] = 50,
            as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
        ) -> None:
            rows: list[dict[str, Any]] = []
            with command_runtime(registry) as rt:
                with system_scope(rt.factory) as session:
                    tenants = [(t.id, t.slug) for t in session.execute(select(Tenant).order_by(Tenant.slug)).scalars()]
                for tenant_id, slug in tenants:
                    stmt = (
                        select(RawInbound).where(RawInbound.tenant_id == tenant_id)
                        .order_by(RawInbound.received_at.desc()).limit(limit)
                    )
                    if status:
                        stmt = stmt.where(RawInbound.status.in_(list(status)))
                    with tenant_scope(rt.factory, tenant_id) as session:
                        rows.extend(raw_row(raw, slug) for raw in session.execute(stmt).scalars())
            if as_json:
                for row in rows:
                    typer.echo(json.dumps(row))
                return
            if not rows:
                typer.echo("no stored mail")
                return
            typer.echo(format_table(
                ["RAW ID", "RECEIVED", "STATUS", "FROM", "SUBJECT", "OUTCOME"],
                [[r["raw_id"], r["received_at"][:19].replace("T", " "), r["status"], r["from"][:30],
                  r["subject"][:40], _outcome_cell(r)] for r in rows],
            ))

    return add
