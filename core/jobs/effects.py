"""A ledger of side effects by their own idempotency key (table `job_effects`).

Two ways to use it, both in the caller's (tenant) session:

* `claim_once(...)` in the transaction that makes a database effect (a draft): the unique key
  and the effect commit together, so a retry finds the key and makes nothing.
* `begin(...)` / `complete(...)` around an external effect (a Slack post): commit the intent
  *before* the call and the result after it. A retry that finds an intent without a result
  knows the call may have happened and must look it up (or give up) instead of repeating it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from core.jobs.models import EffectState, JobEffect


@dataclass(frozen=True)
class Recorded:
    """What an earlier attempt left for this key."""

    state: EffectState
    result: dict[str, Any]
    started_at: datetime
    outbox_id: int | None  # the job that recorded the intent: its own retry knows the attempt is over


def _insert(session: Session, *, tenant_id: uuid.UUID, key: str, state: EffectState,
            result: dict[str, Any], outbox_id: int | None) -> bool:
    stmt = insert(JobEffect).values(
        key=key, tenant_id=tenant_id, state=state, result=result, outbox_id=outbox_id,
        finished_at=func.now() if state is EffectState.DONE else None,
    ).on_conflict_do_nothing(index_elements=["key"]).returning(JobEffect.key)
    return session.execute(stmt).first() is not None


def claim_once(session: Session, *, tenant_id: uuid.UUID, key: str, result: dict[str, Any] | None = None,
               outbox_id: int | None = None) -> bool:
    """True the first time `key` is claimed; the claim commits (or rolls back) with the caller."""
    return _insert(session, tenant_id=tenant_id, key=key, state=EffectState.DONE, result=result or {},
                   outbox_id=outbox_id)


def begin(session: Session, *, tenant_id: uuid.UUID, key: str, outbox_id: int | None = None) -> Recorded | None:
    """Record the intent (None: first time, go ahead) or return what an earlier attempt left."""
    if _insert(session, tenant_id=tenant_id, key=key, state=EffectState.STARTED, result={}, outbox_id=outbox_id):
        return None
    row = session.execute(select(JobEffect).where(JobEffect.key == key).with_for_update()).scalar_one()
    return Recorded(row.state, dict(row.result or {}), row.started_at, row.outbox_id)


def complete(session: Session, *, key: str, result: dict[str, Any]) -> None:
    """The external effect happened: keep its result (e.g. the Slack ts) under its key."""
    row = session.execute(select(JobEffect).where(JobEffect.key == key).with_for_update()).scalar_one()
    row.state, row.result, row.finished_at = EffectState.DONE, result, func.now()  # type: ignore[assignment]


def forget(session: Session, *, key: str) -> None:
    """The effect certainly did not happen (the call failed cleanly): a retry may try again."""
    row = session.get(JobEffect, key)
    if row is not None and row.state is EffectState.STARTED:
        session.delete(row)
