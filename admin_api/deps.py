"""Request dependencies: the runtime, and one unit of work per request in the caller's scope.

Sessions are function-scoped dependencies: the transaction commits after the handler returns
and before the response is sent, so a failed commit is a 500, never a 201 for a lost write.
The session is also put on request.state for the idempotency layer, which stores the response
in that same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from admin_api.auth import PlatformPrincipalDep, PrincipalDep, TenantPrincipalDep
from core.db.session import system_scope, tenant_scope
from core.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def current_tenant(principal: TenantPrincipalDep) -> uuid.UUID:
    return principal.require_tenant()


TenantDep = Annotated[uuid.UUID, Depends(current_tenant)]


def tenant_session(request: Request, runtime: RuntimeDep, tenant_id: TenantDep) -> Iterator[Session]:
    """One unit of work per request, scoped to the caller's tenant (RLS enforced)."""
    with tenant_scope(runtime.factory, tenant_id) as session:
        request.state.db_session = session
        yield session


def platform_session(request: Request, runtime: RuntimeDep, _: PlatformPrincipalDep) -> Iterator[Session]:
    """Platform keys work across tenants: system scope, and only on the tenant endpoints."""
    with system_scope(runtime.factory) as session:
        request.state.db_session = session
        yield session


SessionDep = Annotated[Session, Depends(tenant_session, scope="function")]
PlatformSessionDep = Annotated[Session, Depends(platform_session, scope="function")]


def owner_session(request: Request, runtime: RuntimeDep, principal: PrincipalDep) -> Iterator[Session]:
    """For endpoints both kinds of key use on their own things (API keys): tenant or platform scope."""
    scope = tenant_scope(runtime.factory, principal.tenant_id) if principal.tenant_id else system_scope(runtime.factory)
    with scope as session:
        request.state.db_session = session
        yield session


OwnerSessionDep = Annotated[Session, Depends(owner_session, scope="function")]
