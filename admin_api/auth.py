"""Bearer API keys: who is calling, what its scope allows, and its rate limit.

`resolve_principal` runs once per request (the idempotency layer may call it before the
dependencies do; the result is cached on request.state). Order: key → scope → rate limit, so an
unauthenticated flood cannot drain a real key's bucket.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from admin_api.problems import FORBIDDEN, RATE_LIMITED, UNAUTHORIZED, ProblemError
from admin_api.ratelimit import Limiter, retry_after
from admin_api.request_id import current_request_id
from core.db.session import system_scope
from core.errors import NotFound
from core.runtime import Runtime
from core.tenancy.audit import AuditContext
from core.tenancy.keys import verify_api_key
from core.tenancy.models import ApiKeyScope

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WWW_AUTHENTICATE = {"WWW-Authenticate": "Bearer"}

# Declares the bearer scheme in OpenAPI; auto_error=False so we answer 401 as problem+json ourselves.
bearer_scheme = HTTPBearer(auto_error=False, scheme_name="ApiKey", bearerFormat="tl_<prefix>_<secret>",
                           description="An API key: `Authorization: Bearer tl_…`")


@dataclass(frozen=True)
class Principal:
    key_id: uuid.UUID
    prefix: str
    name: str
    scope: ApiKeyScope
    tenant_id: uuid.UUID | None  # None for platform keys

    @property
    def actor(self) -> str:
        return f"key:{self.prefix} ({self.name})"[:200]

    def require_tenant(self) -> uuid.UUID:
        if self.tenant_id is None:
            raise ProblemError(FORBIDDEN, "platform keys manage tenants; use a tenant's key for its data")
        return self.tenant_id


def client_ip(request: Request) -> str | None:
    # The socket peer: X-Forwarded-For is only trustworthy behind a proxy that uvicorn is told about
    # (--forwarded-allow-ips), which then rewrites the peer for us.
    return request.client.host if request.client else None


def audit_context(request: Request, principal: Principal) -> AuditContext:
    return AuditContext(principal.actor, client_ip=client_ip(request), request_id=current_request_id())


def resolve_principal(request: Request, authorization: str | None) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if not authorization or not authorization.lower().startswith("bearer "):
        raise ProblemError(UNAUTHORIZED, "send 'Authorization: Bearer tl_...'", headers=_WWW_AUTHENTICATE)
    runtime: Runtime = request.app.state.runtime
    try:
        with system_scope(runtime.factory) as session:
            key = verify_api_key(session=session, secret=authorization[7:].strip())
            principal = Principal(key.id, key.prefix, key.name, key.scope, key.tenant_id)
    except NotFound:
        raise ProblemError(UNAUTHORIZED, "invalid, revoked or expired API key", headers=_WWW_AUTHENTICATE) from None
    if principal.scope is ApiKeyScope.READ and request.method not in _READ_METHODS:
        raise ProblemError(FORBIDDEN, "this key has the read scope: GET only")
    limiter: Limiter = request.app.state.limiter
    wait = limiter.take(str(principal.key_id))
    if wait > 0:
        raise ProblemError(RATE_LIMITED, "slow down", headers={"Retry-After": retry_after(wait)})
    request.state.principal = principal
    return principal


def current_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    header = f"Bearer {credentials.credentials}" if credentials else request.headers.get("authorization")
    return resolve_principal(request, header)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def tenant_principal(principal: PrincipalDep) -> Principal:
    principal.require_tenant()
    return principal


def platform_principal(principal: PrincipalDep) -> Principal:
    if principal.scope is not ApiKeyScope.PLATFORM:
        raise ProblemError(FORBIDDEN, "tenants are managed with a platform key")
    return principal


TenantPrincipalDep = Annotated[Principal, Depends(tenant_principal)]
PlatformPrincipalDep = Annotated[Principal, Depends(platform_principal)]
