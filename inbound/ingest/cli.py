"""`threadline ingest-eml` and `threadline replay`: the ingest pipeline from the command line."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from sqlalchemy import select
from tqdm import tqdm

from core.blobs import BlobStore
from core.cli.context import command_runtime, fail
from core.db.session import system_scope
from core.registry import Registry
from core.tenancy.models import Inbox
from core.tickets.models import RawInbound, RawInboundStatus
from inbound.ingest.accept import accept_raw, content_key
from inbound.ingest.pipeline import IngestDeps, ProcessResult, process_raw


def _files(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob("*") if f.is_file()))
        else:
            out.append(p)
    return out


def _line(result: ProcessResult, **extra: Any) -> str:
    return json.dumps(
        {
            **extra,
            "raw_id": str(result.raw_id),
            "status": result.status.value,
            "ticket_id": str(result.ticket_id) if result.ticket_id else None,
            "ticket_number": result.ticket_number,
            "message_id": str(result.message_id) if result.message_id else None,
            "thread_rule": result.thread_rule,
            ("error" if result.status is RawInboundStatus.FAILED else "outcome"): result.outcome,
        }
    )


def register_cli(registry: Registry) -> Any:
    def add(app: typer.Typer) -> None:
        @app.command("ingest-eml", help="Feed raw RFC 5322 files (or folders of them) through the SMTP ingest "
                     "pipeline; prints one JSON line per file.")
        def ingest_eml(
            paths: Annotated[list[Path], typer.Argument(exists=True, help="files or folders")],
            inbox: Annotated[Optional[str], typer.Option("--inbox", help="inbox address (default: the first)")] = None,
        ) -> None:
            files = _files(paths)
            with command_runtime(registry) as rt:
                with system_scope(rt.factory) as session:
                    stmt = select(Inbox).order_by(Inbox.created_at).limit(1)
                    if inbox:
                        stmt = select(Inbox).where(Inbox.address == inbox.strip().lower())
                    target = session.execute(stmt).scalar_one_or_none()
                    if target is None:
                        raise fail(f"no inbox {inbox}" if inbox else "no inbox yet: run `threadline bootstrap`")
                    tenant_id, inbox_id = target.tenant_id, target.id
                deps = IngestDeps(rt.settings, rt.factory, rt.registry, BlobStore.from_settings(rt.settings))
                bar = tqdm(files, unit="mail", disable=len(files) < 20 or not sys.stderr.isatty(), file=sys.stderr)
                failures = 0
                for path in bar:
                    try:
                        data = path.read_bytes()
                    except OSError as exc:
                        failures += 1
                        typer.echo(json.dumps({"file": str(path), "error": f"cannot read: {exc}"}))
                        continue
                    accepted = accept_raw(
                        rt.factory, tenant_id=tenant_id, inbox_id=inbox_id, source="eml", payload=data,
                        idempotency_key=content_key("eml", str(inbox_id), data), envelope={"file": str(path)},
                        process=False,
                    )
                    try:
                        result = process_raw(deps, tenant_id=tenant_id, raw_id=accepted.raw_id)
                    except Exception:  # recorded as failed on the raw record by process_raw
                        failures += 1
                        with system_scope(rt.factory) as session:
                            raw = session.get(RawInbound, accepted.raw_id)
                            result = ProcessResult(accepted.raw_id, RawInboundStatus.FAILED, (raw.error or "") if raw else "")
                    typer.echo(_line(result, file=str(path), duplicate_delivery=accepted.duplicate))
            if failures:
                raise typer.Exit(1)

        @app.command("replay", help="Re-run ingest on stored raw messages: one RAW_ID, or every failed one.")
        def replay(
            raw_id: Annotated[Optional[str], typer.Argument(help="raw inbound id")] = None,
            failed: Annotated[bool, typer.Option("--failed", help="every raw record in state failed")] = False,
            quarantined: Annotated[bool, typer.Option("--quarantined", help="release quarantined records")] = False,
        ) -> None:
            if not raw_id and not (failed or quarantined):
                raise fail("name a RAW_ID or pass --failed / --quarantined", code=2)
            with command_runtime(registry) as rt:
                with system_scope(rt.factory) as session:
                    stmt = select(RawInbound.id, RawInbound.tenant_id)
                    if raw_id:
                        try:
                            stmt = stmt.where(RawInbound.id == uuid.UUID(raw_id))
                        except ValueError:
                            raise fail(f"{raw_id!r} is not a raw record id", code=2) from None
                    else:
                        wanted = [s for s, on in ((RawInboundStatus.FAILED, failed),
                                                  (RawInboundStatus.QUARANTINED, quarantined)) if on]
                        stmt = stmt.where(RawInbound.status.in_(wanted))
                    rows = session.execute(stmt.order_by(RawInbound.received_at)).all()
                    # Replaying means "try again": reset so the pipeline runs the record fully.
                    for rid, _ in rows:
                        raw = session.get(RawInbound, rid)
                        if raw is not None and raw.status is not RawInboundStatus.PROCESSED:
                            raw.status = RawInboundStatus.RECEIVED
                if not rows:
                    raise fail("nothing to replay")
                deps = IngestDeps(rt.settings, rt.factory, rt.registry, BlobStore.from_settings(rt.settings))
                for rid, tid in rows:
                    try:
                        result = process_raw(deps, tenant_id=tid, raw_id=rid)
                    except Exception as exc:  # recorded on the raw record; report and go on
                        result = ProcessResult(rid, RawInboundStatus.FAILED, f"{type(exc).__name__}: {exc}")
                    typer.echo(_line(result))

    return add
