"""Webhook subscriptions: create (the secret is returned once), change, rotate, delete; the delivery log.

Services take the session and never commit; the edge (API request, CLI, job) does.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from core.crypto import SecretBox
from core.errors import NotFound
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.webhooks.models import WebhookDelivery, WebhookSubscription
from core.webhooks.signing import new_secret
from core.webhooks.targets import check_url

# Consecutive failed attempts (across events) before a subscription is switched off: about two
# events that failed every retry. A receiver that is down for a day should not cost us a day of
# timeouts; re-enabling it (PATCH active=true) starts the count again.
DISABLE_AFTER_FAILURES = 15


@dataclass(frozen=True)
class CreatedSubscription:
    subscription: WebhookSubscription
    secret: str


def create_subscription(
    *, session: Session, tenant_id: uuid.UUID, url: str, events: Sequence[str], description: str = "",
    box: SecretBox, allow_private: bool, audit: AuditContext,
) -> CreatedSubscription:
    secret = new_secret()
    sub = WebhookSubscription(
        id=uuid.uuid4(), tenant_id=tenant_id, url=check_url(url, allow_private=allow_private),
        event_kinds=sorted(set(events)), description=description, secret_sealed=box.encrypt(secret), active=True,
        consecutive_failures=0,
    )
    session.add(sub)
    session.flush()
    audit_log.record(session=session, tenant_id=tenant_id, audit=audit, action="webhook.created",
                     target=f"webhook:{sub.id}", data={"url": sub.url, "events": sub.event_kinds})
    return CreatedSubscription(sub, secret)


def get_subscription(
    *, session: Session, tenant_id: uuid.UUID, subscription_id: uuid.UUID, lock: bool = False
) -> WebhookSubscription:
    stmt = select(WebhookSubscription).where(
        WebhookSubscription.tenant_id == tenant_id, WebhookSubscription.id == subscription_id)
    sub = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if sub is None:
        raise NotFound("no such webhook subscription")
    return sub


def list_subscriptions(
    *, session: Session, tenant_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[WebhookSubscription]:
    stmt = select(WebhookSubscription).where(WebhookSubscription.tenant_id == tenant_id)
    if after is not None:
        stmt = stmt.where(tuple_(WebhookSubscription.created_at, WebhookSubscription.id) < tuple_(*after))
    stmt = stmt.order_by(WebhookSubscription.created_at.desc(), WebhookSubscription.id.desc()).limit(limit)
    return list(session.execute(stmt).scalars())


@dataclass(frozen=True)
class SubscriptionChanges:
    url: str | None = None
    events: Sequence[str] | None = None
    description: str | None = None
    active: bool | None = None


def update_subscription(
    *, session: Session, sub: WebhookSubscription, changes: SubscriptionChanges, allow_private: bool,
    audit: AuditContext,
) -> WebhookSubscription:
    if changes.url is not None:
        sub.url = check_url(changes.url, allow_private=allow_private)
    if changes.events is not None:
        sub.event_kinds = sorted(set(changes.events))
    if changes.description is not None:
        sub.description = changes.description
    if changes.active is not None:
        sub.active = changes.active
        if changes.active:  # a fresh start: the admin says the receiver is fixed
            sub.consecutive_failures, sub.disabled_reason = 0, None
    sub.updated_at = func.now()  # type: ignore[assignment]
    session.flush()
    session.refresh(sub)
    audit_log.record(session=session, tenant_id=sub.tenant_id, audit=audit, action="webhook.updated",
                     target=f"webhook:{sub.id}", data={k: v for k, v in {
                         "url": changes.url, "events": list(changes.events) if changes.events else None,
                         "active": changes.active}.items() if v is not None})
    return sub


def rotate_secret(*, session: Session, sub: WebhookSubscription, box: SecretBox, audit: AuditContext) -> str:
    """A new signing secret, effective for the next attempt; the old one stops working at once."""
    secret = new_secret()
    sub.secret_sealed = box.encrypt(secret)
    sub.updated_at = func.now()  # type: ignore[assignment]
    session.flush()
    session.refresh(sub)
    audit_log.record(session=session, tenant_id=sub.tenant_id, audit=audit, action="webhook.secret_rotated",
                     target=f"webhook:{sub.id}")
    return secret


def delete_subscription(*, session: Session, sub: WebhookSubscription, audit: AuditContext) -> None:
    audit_log.record(session=session, tenant_id=sub.tenant_id, audit=audit, action="webhook.deleted",
                     target=f"webhook:{sub.id}", data={"url": sub.url})
    session.delete(sub)
    session.flush()


def list_deliveries(
    *, session: Session, tenant_id: uuid.UUID, subscription_id: uuid.UUID, after: tuple[datetime, int] | None,
    limit: int,
) -> list[WebhookDelivery]:
    stmt = select(WebhookDelivery).where(WebhookDelivery.tenant_id == tenant_id,
                                         WebhookDelivery.subscription_id == subscription_id)
    if after is not None:
        stmt = stmt.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < tuple_(*after))
    stmt = stmt.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    return list(session.execute(stmt).scalars())


@dataclass(frozen=True)
class AttemptResult:
    delivered: bool
    status_code: int | None
    duration_ms: int
    error: str | None
    retry: bool  # worth another attempt (a refused target is not)


def record_attempt(
    *, session: Session, sub: WebhookSubscription, event_id: str, event_kind: str, attempt: int,
    result: AttemptResult, disable_after: int = DISABLE_AFTER_FAILURES,
) -> WebhookDelivery:
    """Log one attempt and keep the failure count; switch the subscription off after too many.

    `sub` must be locked (FOR UPDATE) by the caller: two workers delivering two events to the
    same receiver must not lose a count.
    """
    row = WebhookDelivery(
        tenant_id=sub.tenant_id, subscription_id=sub.id, event_id=event_id, event_kind=event_kind, attempt=attempt,
        delivered=result.delivered, status_code=result.status_code, duration_ms=result.duration_ms,
        error=result.error[:1000] if result.error else None,
    )
    session.add(row)
    if result.delivered:
        sub.consecutive_failures = 0
    else:
        sub.consecutive_failures += 1
        if sub.active and (sub.consecutive_failures >= disable_after or not result.retry):
            sub.active = False
            sub.disabled_reason = (f"disabled after {sub.consecutive_failures} consecutive failed deliveries; "
                                   f"last: {row.error}" if result.retry else f"target refused: {row.error}")[:500]
    session.flush()
    return row
