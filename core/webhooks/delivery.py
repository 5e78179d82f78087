"""The delivery job: one outbox row per domain event, POSTed to every matching subscription.

Three steps, no transaction open while we wait on a receiver:
1. a short tenant transaction lists the active subscriptions for this event that have no
   successful delivery of it yet (a retry re-sends only to those that failed);
2. the POSTs, each with its own timeout, signed with the subscription's secret;
3. a second transaction logs each attempt and updates the failure counts (rows locked).
If a receiver failed and may recover, the job raises: the outbox retries it with backoff.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from core.crypto import SecretBox
from core.db.session import tenant_scope
from core.errors import TemporaryFailure
from core.registry import JobContext, Registry
from core.tickets.events import DomainEvent
from core.webhooks.models import WebhookDelivery, WebhookSubscription
from core.webhooks.schemas import WebhookEvent
from core.webhooks.service import AttemptResult, record_attempt
from core.webhooks.signing import EVENT_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, sign
from core.webhooks.targets import TargetRefused, resolve

log = logging.getLogger(__name__)

DELIVER_JOB = "webhooks.deliver"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
USER_AGENT = "Threadline-Webhooks/1"


class DeliveryFailed(TemporaryFailure):
    """At least one receiver failed and may recover: retry the event (only to those)."""


@dataclass(frozen=True)
class Pending:
    subscription_id: uuid.UUID
    url: str
    secret: str
    attempt: int


def event_body(*, event_id: str, tenant_id: uuid.UUID, payload: dict[str, Any]) -> bytes:
    """The JSON a receiver gets: the same bytes on every attempt of this event."""
    data = {k: v for k, v in payload.items() if k not in ("event", "at")}
    body = {"id": event_id, "type": payload["event"], "created_at": payload.get("at"), "tenant_id": str(tenant_id),
            "data": data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def deliver(ctx: JobContext, payload: dict[str, Any]) -> None:
    kind = str(payload["event"])
    event_id = f"evt_{ctx.outbox_id}"  # one outbox row per event for this job: stable across retries
    pending = _pending(ctx, kind=kind, event_id=event_id, at=payload.get("at"))
    if not pending:
        return
    body = event_body(event_id=event_id, tenant_id=ctx.tenant_id, payload=payload)
    results = [(p, post(p, body=body, kind=kind, event_id=event_id, allow_private=ctx.settings.webhook_allow_private))
               for p in pending]
    retry = _record(ctx, kind=kind, event_id=event_id, results=results)
    if retry:
        raise DeliveryFailed(f"{retry} webhook receiver(s) failed for {event_id}")


def _pending(ctx: JobContext, *, kind: str, event_id: str, at: str | None) -> list[Pending]:
    box = SecretBox.from_settings(ctx.settings)
    delivered = exists().where(WebhookDelivery.subscription_id == WebhookSubscription.id,
                               WebhookDelivery.event_id == event_id, WebhookDelivery.delivered.is_(True))
    attempts = (select(func.count()).where(WebhookDelivery.subscription_id == WebhookSubscription.id,
                                           WebhookDelivery.event_id == event_id).scalar_subquery())
    stmt = select(WebhookSubscription, attempts).where(
        WebhookSubscription.tenant_id == ctx.tenant_id, WebhookSubscription.active.is_(True),
        WebhookSubscription.event_kinds.any(kind), ~delivered)  # type: ignore[arg-type]
    if at:  # a subscription made after the event does not receive it on a retry either
        stmt = stmt.where(WebhookSubscription.created_at <= datetime.fromisoformat(at))
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        rows = session.execute(stmt.order_by(WebhookSubscription.created_at)).all()
        return [Pending(sub.id, sub.url, box.decrypt(sub.secret_sealed), n + 1) for sub, n in rows]


def post(p: Pending, *, body: bytes, kind: str, event_id: str, allow_private: bool) -> AttemptResult:
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = resolve(p.url, allow_private=allow_private)
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, "Host": target.host_header,
                   EVENT_HEADER: kind, EVENT_ID_HEADER: event_id, SIGNATURE_HEADER: sign(p.secret, body)}
        extensions = {"sni_hostname": target.tls_server_name} if target.tls_server_name else {}
        # No redirects: a 3xx to an internal address would undo the address check.
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False) as client, client.stream(
                "POST", target.connect_url, content=body, headers=headers, extensions=extensions) as response:
            status = response.status_code  # the body is never read: a receiver cannot make us download
    except TargetRefused as exc:
        return AttemptResult(False, None, took(), str(exc), retry=False)
    except (httpx.HTTPError, ConnectionError, OSError) as exc:
        return AttemptResult(False, None, took(), f"{type(exc).__name__}: {exc}", retry=True)
    ok = 200 <= status < 300
    return AttemptResult(ok, status, took(), None if ok else f"HTTP {status}", retry=not ok)


def _record(ctx: JobContext, *, kind: str, event_id: str, results: list[tuple[Pending, AttemptResult]]) -> int:
    """Log every attempt; the number of receivers worth retrying."""
    retry = 0
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        for p, result in results:
            sub = session.execute(select(WebhookSubscription).where(WebhookSubscription.id == p.subscription_id)
                                  .with_for_update()).scalar_one_or_none()
            if sub is None:  # deleted while we were sending
                continue
            record_attempt(session=session, sub=sub, event_id=event_id, event_kind=kind, attempt=p.attempt,
                           result=result)
            if not result.delivered:
                log.info("webhook delivery failed", extra={"webhook": str(sub.id), "event_id": event_id,
                                                           "status": result.status_code, "error": result.error})
            retry += int(not result.delivered and result.retry and sub.active)
    return retry


def has_receivers(session: Session, event: DomainEvent) -> bool:
    """Whether the tenant has an active subscription to this kind now (else the job would find none)."""
    with session.no_autoflush:  # a read beside the caller's unit of work, not a reason to flush it
        return bool(session.execute(select(exists().where(
            WebhookSubscription.tenant_id == event.tenant_id, WebhookSubscription.active.is_(True),
            WebhookSubscription.event_kinds.any(event.kind),  # type: ignore[arg-type]
        ))).scalar())


def register(registry: Registry) -> None:
    registry.add_job(DELIVER_JOB, deliver, queue="webhooks", concerns=has_receivers)
    for kind in WebhookEvent:
        registry.subscribe(kind.value, DELIVER_JOB)
