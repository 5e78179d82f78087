"""Webhooks: subscriptions to ticket and message events, their signing secret and delivery log."""

from __future__ import annotations

import uuid

from fastapi import Request, Response

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.etags import check_if_match, set_etag
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from core.crypto import SecretBox
from core.webhooks import service
from core.webhooks.models import WebhookSubscription
from core.webhooks.schemas import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPublic,
    WebhookPublic,
    WebhookUpdate,
)

router = admin_router("webhooks")


def _box(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.secret_box
    return box


def _created(sub: WebhookSubscription, secret: str) -> WebhookCreated:
    return WebhookCreated(**WebhookPublic.model_validate(sub).model_dump(), secret=secret)


@router.post("/webhooks", status_code=201, response_model=WebhookCreated)
def create(body: WebhookCreate, request: Request, response: Response, session: SessionDep,
           principal: TenantPrincipalDep, runtime: RuntimeDep) -> WebhookCreated:
    """Subscribe a URL to events. The signing `secret` is in this answer only: each POST carries
    `Threadline-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`."""
    made = service.create_subscription(
        session=session, tenant_id=principal.require_tenant(), url=body.url, events=[e.value for e in body.events],
        description=body.description, box=_box(request), allow_private=runtime.settings.webhook_allow_private,
        audit=audit_context(request, principal))
    response.headers["Location"] = f"{request.url.path}/{made.subscription.id}"
    return _created(made.subscription, made.secret)


@router.get("/webhooks", response_model=Page[WebhookPublic])
def list_(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
          cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[WebhookPublic]:
    rows = service.list_subscriptions(session=session, tenant_id=principal.require_tenant(),
                                      after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=WebhookPublic.model_validate)


@router.get("/webhooks/{webhook_id}", response_model=WebhookPublic)
def show(webhook_id: uuid.UUID, response: Response, session: SessionDep,
         principal: TenantPrincipalDep) -> WebhookPublic:
    public = WebhookPublic.model_validate(service.get_subscription(
        session=session, tenant_id=principal.require_tenant(), subscription_id=webhook_id))
    set_etag(response, public)
    return public


@router.patch("/webhooks/{webhook_id}", response_model=WebhookPublic)
def update(webhook_id: uuid.UUID, body: WebhookUpdate, request: Request, response: Response, session: SessionDep,
           principal: TenantPrincipalDep, runtime: RuntimeDep) -> WebhookPublic:
    """Change only the fields sent; `"active": true` re-enables a subscription disabled after failures."""
    sub = service.get_subscription(session=session, tenant_id=principal.require_tenant(), subscription_id=webhook_id,
                                   lock=True)
    check_if_match(request, WebhookPublic.model_validate(sub))
    changes = service.SubscriptionChanges(
        url=body.url, events=[e.value for e in body.events] if body.events else None, description=body.description,
        active=body.active)
    service.update_subscription(session=session, sub=sub, changes=changes,
                                allow_private=runtime.settings.webhook_allow_private,
                                audit=audit_context(request, principal))
    public = WebhookPublic.model_validate(sub)
    set_etag(response, public)
    return public


@router.post("/webhooks/{webhook_id}/rotate-secret", response_model=WebhookCreated)
def rotate_secret(webhook_id: uuid.UUID, request: Request, session: SessionDep,
                  principal: TenantPrincipalDep) -> WebhookCreated:
    """A new signing secret (in this answer only); the old one stops signing at once."""
    sub = service.get_subscription(session=session, tenant_id=principal.require_tenant(), subscription_id=webhook_id,
                                   lock=True)
    secret = service.rotate_secret(session=session, sub=sub, box=_box(request),
                                   audit=audit_context(request, principal))
    return _created(sub, secret)


@router.delete("/webhooks/{webhook_id}", status_code=204)
def delete(webhook_id: uuid.UUID, request: Request, session: SessionDep, principal: TenantPrincipalDep) -> Response:
    """Delete the subscription and its delivery log; events in flight are not sent to it."""
    sub = service.get_subscription(session=session, tenant_id=principal.require_tenant(), subscription_id=webhook_id,
                                   lock=True)
    check_if_match(request, WebhookPublic.model_validate(sub))
    service.delete_subscription(session=session, sub=sub, audit=audit_context(request, principal))
    return Response(status_code=204)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[WebhookDeliveryPublic])
def deliveries(webhook_id: uuid.UUID, request: Request, response: Response, session: SessionDep,
               principal: TenantPrincipalDep, cursor: CursorQuery = None,
               limit: LimitQuery = DEFAULT_LIMIT) -> Page[WebhookDeliveryPublic]:
    """Every attempt, newest first: status code, duration, error, attempt number."""
    tenant_id = principal.require_tenant()
    service.get_subscription(session=session, tenant_id=tenant_id, subscription_id=webhook_id)
    rows = service.list_deliveries(session=session, tenant_id=tenant_id, subscription_id=webhook_id,
                                   after=decode_cursor(cursor, id_type=int), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=WebhookDeliveryPublic.model_validate)
