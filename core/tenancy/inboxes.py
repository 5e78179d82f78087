"""Inbox settings an admin changes: name, reply mode, acknowledgement, Slack channel binding."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import Inbox, ReplyMode
from core.tenancy.service import inbox_for_address

MAX_ACK_CHARS = 5000
UNSET: Any = object()  # "not given", distinct from None ("clear it")


@dataclass(frozen=True)
class InboxChanges:
    """Fields left UNSET are not touched; None clears an optional field."""

    name: str = UNSET
    reply_mode: ReplyMode = UNSET
    send_acknowledgement: bool = UNSET
    acknowledgement_text: str | None = UNSET
    slack_channel_id: str | None = UNSET
    slack_user_group_id: str | None = UNSET
    teams_channel_id: str | None = UNSET
    teams_team_id: str | None = UNSET

    def given(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not UNSET}


def list_inboxes(
    *, session: Session, tenant_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Inbox]:
    stmt = select(Inbox).where(Inbox.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(tuple_(Inbox.created_at, Inbox.id) < tuple_(*after))
    return list(session.execute(stmt.order_by(Inbox.created_at.desc(), Inbox.id.desc()).limit(limit)).scalars())


def get_inbox(*, session: Session, tenant_id: uuid.UUID, inbox_id: uuid.UUID, lock: bool = False) -> Inbox:
    # tenant_id filtered explicitly as well as by RLS (least privilege, architecture §9).
    stmt = select(Inbox).where(Inbox.tenant_id == tenant_id, Inbox.id == inbox_id)
    inbox = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if inbox is None:
        raise NotFound("no such inbox")
    return inbox


def inbox_by_address(*, session: Session, tenant_id: uuid.UUID, address: str) -> Inbox:
    inbox = inbox_for_address(session=session, address=address)
    if inbox is None or inbox.tenant_id != tenant_id:
        raise NotFound(f"no inbox for {address.strip().lower()}")
    return inbox


def update_inbox(*, session: Session, inbox: Inbox, changes: InboxChanges, audit: AuditContext) -> Inbox:
    given = changes.given()
    if "name" in given and not (given["name"] or "").strip():
        raise InvalidInput("the inbox name is empty")
    text = given.get("acknowledgement_text")
    if text is not None and (not text.strip() or len(text) > MAX_ACK_CHARS):
        raise InvalidInput(f"the acknowledgement text must be 1-{MAX_ACK_CHARS} characters")
    for key in ("slack_channel_id", "slack_user_group_id", "teams_channel_id", "teams_team_id"):
        if given.get(key) is not None and not given[key].strip():
            given[key] = None  # "" unbinds, like null
    changed = {k: v for k, v in given.items() if getattr(inbox, k) != v}
    for key, value in changed.items():
        setattr(inbox, key, value)
    if changed:
        audit_log.record(session=session, tenant_id=inbox.tenant_id, audit=audit, action="inbox.updated",
                         target=f"inbox:{inbox.id}",
                         data={k: (v.value if isinstance(v, ReplyMode) else v) for k, v in changed.items()})
    session.flush()
    return inbox
