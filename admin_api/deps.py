"""Request dependencies: the runtime, the caller's tenant from its API key."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from core.db.session import system_scope, tenant_scope
from core.errors import NotFound
from core.runtime import Runtime
from core.tenancy.service import verify_api_key


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def current_tenant(runtime: RuntimeDep, authorization: Annotated[str | None, Header()] = None) -> uuid.UUID:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "missing API key: send 'Authorization: Bearer tl_...'",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        with system_scope(runtime.factory) as session:
            key = verify_api_key(session=session, secret=authorization[7:].strip())
            return key.tenant_id
    except NotFound:
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}) from None


TenantDep = Annotated[uuid.UUID, Depends(current_tenant)]


def tenant_session(runtime: RuntimeDep, tenant_id: TenantDep) -> Iterator[Session]:
    """One unit of work per request, scoped to the caller's tenant (RLS enforced)."""
    with tenant_scope(runtime.factory, tenant_id) as session:
        yield session


SessionDep = Annotated[Session, Depends(tenant_session)]
