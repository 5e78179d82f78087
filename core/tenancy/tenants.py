"""Tenant administration for platform operators (system scope): create with a first key, list, disable."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from core.errors import InvalidInput, NotFound
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.keys import IssuedKey, issue_api_key
from core.tenancy.models import ApiKeyScope, Tenant
from core.tenancy.service import create_tenant


@dataclass(frozen=True)
class NewTenant:
    tenant: Tenant
    admin_key: IssuedKey  # its secret is shown once


def create_tenant_with_key(*, session: Session, name: str, slug: str | None, audit: AuditContext) -> NewTenant:
    tenant = create_tenant(session=session, name=name, slug=slug)
    issued = issue_api_key(session=session, tenant_id=tenant.id, name="first admin key", scope=ApiKeyScope.ADMIN,
                           audit=audit)
    audit_log.record(session=session, tenant_id=tenant.id, audit=audit, action="tenant.created",
                     target=f"tenant:{tenant.slug}", data={"name": tenant.name})
    return NewTenant(tenant, issued)


def list_tenants(*, session: Session, after: tuple[datetime, uuid.UUID] | None, limit: int) -> list[Tenant]:
    stmt = select(Tenant)
    if after is not None:
        stmt = stmt.where(tuple_(Tenant.created_at, Tenant.id) < tuple_(*after))
    return list(session.execute(stmt.order_by(Tenant.created_at.desc(), Tenant.id.desc()).limit(limit)).scalars())


def get_tenant(*, session: Session, tenant_id: uuid.UUID, lock: bool = False) -> Tenant:
    stmt = select(Tenant).where(Tenant.id == tenant_id)
    tenant = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if tenant is None:
        raise NotFound("no such tenant")
    return tenant


def tenant_by_slug(*, session: Session, slug: str) -> Tenant:
    tenant = session.execute(select(Tenant).where(Tenant.slug == slug)).scalar_one_or_none()
    if tenant is None:
        raise NotFound(f"no tenant {slug!r}")
    return tenant


def update_tenant(
    *, session: Session, tenant: Tenant, name: str | None, disabled: bool | None, audit: AuditContext
) -> Tenant:
    """Rename, disable (every key of the tenant stops working at once) or enable again."""
    changes: dict[str, object] = {}
    if name is not None:
        if not name.strip():
            raise InvalidInput("the tenant name is empty")
        if name.strip() != tenant.name:
            tenant.name = changes["name"] = name.strip()
    if disabled is not None and disabled != (tenant.disabled_at is not None):
        tenant.disabled_at = datetime.now(UTC) if disabled else None
        changes["disabled"] = disabled
    if changes:
        action = "tenant.disabled" if changes.get("disabled") is True else "tenant.updated"
        audit_log.record(session=session, tenant_id=tenant.id, audit=audit, action=action,
                         target=f"tenant:{tenant.slug}", data=changes)
    session.flush()
    return tenant
