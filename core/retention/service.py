"""Retention: delete what has outlived its setting, in small batches that never block ingest.

Each batch is `SELECT … LIMIT n FOR UPDATE SKIP LOCKED` + DELETE in its own short transaction
(system scope: retention is cross-tenant), repeated until a batch comes back short. Raw records
still being processed (`received`) are never due; failed and held ones have their own, longer
limit (an operator may still replay or release them).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from core.blobs import BlobStore
from core.db.session import system_scope
from core.settings import Settings

log = logging.getLogger(__name__)
BATCH = 500


@dataclass(frozen=True)
class RetentionReport:
    raw: int = 0
    outbox: int = 0
    seen_events: int = 0
    blobs: int = 0


def _cutoff(days: int, now: datetime) -> datetime | None:
    return None if days <= 0 else now - timedelta(days=days)


def referencing_columns(session: Session, table: str) -> list[tuple[str, str]]:
    """(table, column) of every single-column foreign key pointing at `table`: found in the
    catalog, so plugin tables (widget messages…) are covered without core importing them."""
    rows = session.execute(text(
        "SELECT c.conrelid::regclass::text, a.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "WHERE c.contype = 'f' AND c.confrelid = CAST(:t AS regclass) AND cardinality(c.conkey) = 1"
    ), {"t": table}).all()
    return [(str(r[0]), str(r[1])) for r in rows]


def _batches(factory: sessionmaker[Session], select_due: str, delete: str, params: dict[str, object]) -> int:
    total = 0
    while True:
        with system_scope(factory) as session:
            ids = list(session.execute(text(select_due + " LIMIT :n FOR UPDATE SKIP LOCKED"),
                                       params | {"n": BATCH}).scalars())
            if ids:
                session.execute(text(delete), {"ids": ids})
        total += len(ids)
        if len(ids) < BATCH:
            return total


def prune_raw(factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    done, failed = _cutoff(settings.retain_raw_days, now), _cutoff(settings.retain_failed_raw_days, now)
    if done is None and failed is None:
        return 0
    far_past = datetime(1970, 1, 1, tzinfo=UTC)  # "0 = forever" for one kind: nothing is older
    select_due = (
        "SELECT id FROM raw_inbound WHERE "
        "(status IN ('processed', 'ignored', 'quarantined') AND NOT held AND received_at < :done) OR "
        "((status = 'failed' OR held) AND received_at < :failed)"
    )
    total = 0
    while True:
        with system_scope(factory) as session:
            ids = list(session.execute(text(select_due + " LIMIT :n FOR UPDATE OF raw_inbound SKIP LOCKED"),
                                       {"done": done or far_past, "failed": failed or far_past, "n": BATCH}).scalars())
            if ids:
                # Messages keep their content; only the link to the bytes goes.
                for table, column in referencing_columns(session, "raw_inbound"):
                    session.execute(text(f'UPDATE {table} SET "{column}" = NULL WHERE "{column}" = ANY(:ids)'),
                                    {"ids": ids})
                session.execute(text("DELETE FROM raw_inbound WHERE id = ANY(:ids)"), {"ids": ids})
        total += len(ids)
        if len(ids) < BATCH:
            return total


def prune_outbox(factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    cut = _cutoff(settings.retain_outbox_days, now)
    if cut is None:
        return 0
    # Dead rows stay: an operator lists and retries them.
    return _batches(factory, "SELECT id FROM outbox WHERE status = 'done' AND finished_at < :cut",
                    "DELETE FROM outbox WHERE id = ANY(:ids)", {"cut": cut})


def prune_seen_events(factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    cut = _cutoff(settings.retain_seen_events_days, now)
    if cut is None:
        return 0
    # Insert-only rows nobody locks (and the system role may only SELECT/INSERT/DELETE them): a
    # plain LIMIT batch is enough; two schedulers deleting the same row is harmless.
    total = 0
    while True:
        with system_scope(factory) as session:
            count = len(session.execute(text(
                "DELETE FROM seen_events WHERE (surface, event_id) IN "
                "(SELECT surface, event_id FROM seen_events WHERE created_at < :cut LIMIT :n) RETURNING 1"
            ), {"cut": cut, "n": BATCH}).all())
        total += count
        if count < BATCH:
            return total


def referenced_blobs(session: Session, shas: list[str]) -> set[str]:
    """Which of these hashes a row still names: every `sha256` column in the schema (attachments,
    widget uploads, …), all tenants (call in system scope: a blob is shared by content)."""
    tables = session.execute(text(
        "SELECT table_name FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'sha256'"
    )).scalars().all()
    found: set[str] = set()
    for table in tables:
        found |= set(session.execute(text(f"SELECT DISTINCT sha256 FROM {table} WHERE sha256 = ANY(:s)"),
                                     {"s": shas}).scalars())
    return found


def _blob_files(store: BlobStore) -> list[Path]:
    if not store.root.is_dir():
        return []
    return [p for p in store.root.glob("??/??/*") if p.is_file() and not p.name.startswith(".")]


def prune_blobs(factory: sessionmaker[Session], settings: Settings, now: datetime) -> int:
    cut = _cutoff(settings.retain_orphan_blob_days, now)
    if cut is None:
        return 0
    # The grace period covers a blob written just before the row that names it commits.
    old = [p for p in _blob_files(BlobStore.from_settings(settings)) if p.stat().st_mtime < cut.timestamp()]
    removed = 0
    for start in range(0, len(old), BATCH):
        chunk = {p.name: p for p in old[start:start + BATCH]}
        with system_scope(factory) as session:
            keep = referenced_blobs(session, list(chunk))
        for sha, path in chunk.items():
            if sha not in keep:
                path.unlink(missing_ok=True)
                removed += 1
    return removed


def run_retention(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime | None = None
) -> RetentionReport:
    now = now or datetime.now(UTC)
    started = time.monotonic()
    report = RetentionReport(raw=prune_raw(factory, settings, now), outbox=prune_outbox(factory, settings, now),
                             seen_events=prune_seen_events(factory, settings, now),
                             blobs=prune_blobs(factory, settings, now))
    if any((report.raw, report.outbox, report.seen_events, report.blobs)):
        log.info("retention pruned", extra={**report.__dict__, "seconds": round(time.monotonic() - started, 2)})
    return report


_last_run: dict[int, float] = {}  # per session factory (several runtimes may share a process in tests)


def maybe_run_retention(factory: sessionmaker[Session], settings: Settings, *, every: float = 3600) -> None:
    """The scheduler's hook: run retention at most once per `every` seconds."""
    now = time.monotonic()
    if now - _last_run.get(id(factory), -every) < every:
        return
    _last_run[id(factory)] = now
    run_retention(factory, settings)


__all__ = ["RetentionReport", "maybe_run_retention", "run_retention", "referenced_blobs", "referencing_columns"]
