"""API keys of the caller's tenant (or, for a platform key, the platform keys): create, list, rotate, revoke."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import Request, Response

from admin_api.auth import PrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import OwnerSessionDep
from admin_api.etags import check_if_match, set_etag
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from admin_api.problems import FORBIDDEN, ProblemError
from core.tenancy import keys as service
from core.tenancy.models import ApiKeyScope
from core.tenancy.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, ApiKeyRotate

router = admin_router("api-keys")


def _created(issued: service.IssuedKey) -> ApiKeyCreated:
    return ApiKeyCreated(**ApiKeyPublic.of(issued.key).model_dump(), secret=issued.secret)


@router.post("/api-keys", status_code=201, response_model=ApiKeyCreated)
def create_key(body: ApiKeyCreate, request: Request, response: Response, session: OwnerSessionDep,
               principal: PrincipalDep) -> ApiKeyCreated:
    """Create a key; its `secret` is in this answer only. A platform key creates platform keys."""
    if principal.tenant_id is None and body.scope != "admin":
        raise ProblemError(FORBIDDEN, "platform keys create platform keys (send scope admin or omit it)")
    scope = ApiKeyScope.PLATFORM if principal.tenant_id is None else ApiKeyScope(body.scope)
    issued = service.issue_api_key(session=session, tenant_id=principal.tenant_id, name=body.name, scope=scope,
                                   expires_at=body.expires_at, audit=audit_context(request, principal))
    response.headers["Location"] = f"{request.url.path}/{issued.key.id}"
    return _created(issued)


@router.get("/api-keys", response_model=Page[ApiKeyPublic])
def list_keys(request: Request, response: Response, session: OwnerSessionDep, principal: PrincipalDep,
              cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[ApiKeyPublic]:
    rows = service.list_api_keys(session=session, tenant_id=principal.tenant_id,
                                 after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=ApiKeyPublic.of)


@router.get("/api-keys/{key_id}", response_model=ApiKeyPublic)
def show_key(key_id: uuid.UUID, response: Response, session: OwnerSessionDep, principal: PrincipalDep) -> ApiKeyPublic:
    public = ApiKeyPublic.of(service.get_api_key(session=session, tenant_id=principal.tenant_id, key_id=key_id))
    set_etag(response, public)
    return public


@router.post("/api-keys/{key_id}/rotate", status_code=201, response_model=ApiKeyCreated)
def rotate_key(key_id: uuid.UUID, body: ApiKeyRotate, request: Request, session: OwnerSessionDep,
               principal: PrincipalDep) -> ApiKeyCreated:
    """A new key with the same name and scope; the old one is revoked now or after `grace_seconds`."""
    issued = service.rotate_api_key(session=session, tenant_id=principal.tenant_id, key_id=key_id,
                                    grace=timedelta(seconds=body.grace_seconds), expires_at=body.expires_at,
                                    audit=audit_context(request, principal))
    return _created(issued)


@router.delete("/api-keys/{key_id}", response_model=ApiKeyPublic)
def revoke_key(key_id: uuid.UUID, request: Request, session: OwnerSessionDep, principal: PrincipalDep) -> ApiKeyPublic:
    """Revoke a key at once (the row stays, for the audit log and the list)."""
    current = service.get_api_key(session=session, tenant_id=principal.tenant_id, key_id=key_id, lock=True)
    check_if_match(request, ApiKeyPublic.of(current))
    key = service.revoke_api_key(session=session, tenant_id=principal.tenant_id, key_id=key_id,
                                 audit=audit_context(request, principal))
    return ApiKeyPublic.of(key)
