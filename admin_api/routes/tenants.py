"""Tenants, for platform keys: create (with a first admin key, shown once), list, show, update/disable."""

from __future__ import annotations

import uuid

from fastapi import Request, Response

from admin_api.auth import PlatformPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import PlatformSessionDep
from admin_api.etags import check_if_match, set_etag
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from core.tenancy import tenants as service
from core.tenancy.keys import issue_api_key
from core.tenancy.models import ApiKeyScope
from core.tenancy.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    TenantCreate,
    TenantCreated,
    TenantPublic,
    TenantUpdate,
)

router = admin_router("tenants")


@router.post("/tenants", status_code=201, response_model=TenantCreated)
def create_tenant(body: TenantCreate, request: Request, response: Response, session: PlatformSessionDep,
                  principal: PlatformPrincipalDep) -> TenantCreated:
    """Create a tenant and its first admin key (the secret is in this answer only)."""
    new = service.create_tenant_with_key(session=session, name=body.name, slug=body.slug,
                                         audit=audit_context(request, principal))
    response.headers["Location"] = f"{request.url.path}/{new.tenant.id}"
    public = ApiKeyPublic.of(new.admin_key.key).model_dump()
    return TenantCreated(tenant=TenantPublic.model_validate(new.tenant),
                         admin_key=ApiKeyCreated(**public, secret=new.admin_key.secret))


@router.get("/tenants", response_model=Page[TenantPublic])
def list_tenants(request: Request, response: Response, session: PlatformSessionDep, cursor: CursorQuery = None,
                 limit: LimitQuery = DEFAULT_LIMIT) -> Page[TenantPublic]:
    rows = service.list_tenants(session=session, after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=TenantPublic.model_validate)


@router.get("/tenants/{tenant_id}", response_model=TenantPublic)
def show_tenant(tenant_id: uuid.UUID, response: Response, session: PlatformSessionDep) -> TenantPublic:
    public = TenantPublic.model_validate(service.get_tenant(session=session, tenant_id=tenant_id))
    set_etag(response, public)
    return public


@router.patch("/tenants/{tenant_id}", response_model=TenantPublic)
def update_tenant(tenant_id: uuid.UUID, body: TenantUpdate, request: Request, response: Response,
                  session: PlatformSessionDep, principal: PlatformPrincipalDep) -> TenantPublic:
    """Rename, or disable (`{"disabled": true}`: every key of the tenant stops working) and enable."""
    tenant = service.get_tenant(session=session, tenant_id=tenant_id, lock=True)
    check_if_match(request, TenantPublic.model_validate(tenant))
    service.update_tenant(session=session, tenant=tenant, name=body.name, disabled=body.disabled,
                          audit=audit_context(request, principal))
    public = TenantPublic.model_validate(tenant)
    set_etag(response, public)
    return public


@router.post("/tenants/{tenant_id}/api-keys", status_code=201, response_model=ApiKeyCreated)
def issue_tenant_key(tenant_id: uuid.UUID, body: ApiKeyCreate, request: Request, session: PlatformSessionDep,
                     principal: PlatformPrincipalDep) -> ApiKeyCreated:
    """Issue a key for a tenant, e.g. to replace a lost bootstrap key."""
    tenant = service.get_tenant(session=session, tenant_id=tenant_id)
    issued = issue_api_key(session=session, tenant_id=tenant.id, name=body.name, scope=ApiKeyScope(body.scope),
                           expires_at=body.expires_at, audit=audit_context(request, principal))
    return ApiKeyCreated(**ApiKeyPublic.of(issued.key).model_dump(), secret=issued.secret)
