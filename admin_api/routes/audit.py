"""The audit log, read-only: filter by actor, action, target and time range; newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query, Request, Response

from admin_api.auth import TenantPrincipalDep
from admin_api.conventions import admin_router
from admin_api.deps import SessionDep
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from core.tenancy import audit as service
from core.tenancy.schemas import AuditEntryPublic

router = admin_router("audit")


@router.get("/audit", response_model=Page[AuditEntryPublic])
def list_entries(
    request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
    actor: Annotated[str | None, Query(max_length=200, description="prefix, e.g. `key:0a1b2c3d4e5f`")] = None,
    action: Annotated[str | None, Query(max_length=64, description="prefix: `inbox.`, `api_key.rotated`")] = None,
    target: Annotated[str | None, Query(max_length=200, description="exact, e.g. `inbox:<id>`")] = None,
    since: Annotated[datetime | None, Query(description="from (inclusive), ISO 8601")] = None,
    until: Annotated[datetime | None, Query(description="to (exclusive), ISO 8601")] = None,
    cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT,
) -> Page[AuditEntryPublic]:
    rows = service.list_entries(
        session=session, tenant_id=principal.require_tenant(),
        where=service.AuditFilter(actor=actor, action=action, target=target, since=since, until=until),
        after=decode_cursor(cursor, id_type=int), limit=limit + 1,
    )
    return paginate(request, response, rows, limit=limit, to_public=AuditEntryPublic.model_validate)
