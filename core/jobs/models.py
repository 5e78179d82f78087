"""The transactional outbox: side effects written with the change, run after commit.

A row is owned by whoever holds its lease (`lease_until`, `lease_token`): the relay while the
message waits in Redis, then the worker running it. Only an expired lease is requeued.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base, TenantOwned, str_enum


class OutboxStatus(StrEnum):
    PENDING = "pending"  # committed, not yet handed to the queue
    ENQUEUED = "enqueued"  # in Redis; a worker will run it
    RUNNING = "running"  # a worker holds the lease; requeued only once `lease_until` passes
    DONE = "done"
    DEAD = "dead"  # retries exhausted; an operator lists and retries it


class OutboxRow(TenantOwned, Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "available_at", postgresql_where="status = 'pending'"),
        Index("ix_outbox_status", "status"),
        # The scheduler's scan for expired leases.
        Index("ix_outbox_leased", "lease_until", postgresql_where="status IN ('enqueued', 'running')"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[OutboxStatus] = mapped_column(
        str_enum(OutboxStatus, "outbox_status"), default=OutboxStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    available_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ticket_id: Mapped[uuid.UUID | None] = mapped_column()  # for ordering/diagnostics only
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Fencing token of the attempt that holds the lease: a stale worker's result is refused.
    lease_token: Mapped[uuid.UUID | None] = mapped_column()


class EffectState(StrEnum):
    STARTED = "started"  # the side effect may have happened: a retry decides by policy
    DONE = "done"


class JobEffect(TenantOwned, Base):
    """One row per side effect, keyed by the effect's own idempotency key (e.g. our Message-ID,
    a Slack post's client key, "one draft per customer message"). Unique key = at most once."""

    __tablename__ = "job_effects"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    state: Mapped[EffectState] = mapped_column(str_enum(EffectState, "effect_state"), default=EffectState.STARTED)
    outbox_id: Mapped[int | None] = mapped_column(BigInteger)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
