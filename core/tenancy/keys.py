"""API keys: issue (the secret is returned once), verify, list, rotate, revoke.

A key reads `tl_<prefix>_<secret>`: the 12-hex prefix is public (it finds the row and names the
key in lists and the audit log), only the SHA-256 of the whole key is stored. Tenant keys have
scope `admin` or `read`; `platform` keys have no tenant and manage tenants.
Platform keys live outside every tenant, so their own issue/rotate/revoke is logged, not audited.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import ColumnElement, select, tuple_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from core.errors import Conflict, InvalidInput, NotFound
from core.tenancy import audit as audit_log
from core.tenancy.audit import AuditContext
from core.tenancy.models import ApiKey, ApiKeyScope, Tenant

log = logging.getLogger(__name__)

API_KEY_PREFIX = "tl_"
MAX_KEY_CHARS = 128  # ours are ~59; anything much longer is not worth hashing
# last_used_at is informative: writing it on every request would turn each GET into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MAX_GRACE = timedelta(days=7)


KeyStatusName = Literal["active", "expired", "revoked"]


class KeyStatus:
    ACTIVE: KeyStatusName = "active"
    EXPIRED: KeyStatusName = "expired"
    REVOKED: KeyStatusName = "revoked"


@dataclass(frozen=True)
class IssuedKey:
    key: ApiKey
    secret: str  # shown once, never stored


def _hash_key(secret: str) -> str:
    # Keys are 256-bit random: a fast hash is enough (no password stretching needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def key_status(key: ApiKey, *, now: datetime | None = None) -> KeyStatusName:
    now = now or datetime.now(UTC)
    if key.revoked_at is not None and key.revoked_at <= now:
        return KeyStatus.REVOKED
    if key.expires_at is not None and key.expires_at <= now:
        return KeyStatus.EXPIRED
    return KeyStatus.ACTIVE


def _owner(tenant_id: uuid.UUID | None) -> ColumnElement[bool]:
    return ApiKey.tenant_id.is_(None) if tenant_id is None else ApiKey.tenant_id == tenant_id


def _check_scope(tenant_id: uuid.UUID | None, scope: ApiKeyScope) -> None:
    if (scope is ApiKeyScope.PLATFORM) != (tenant_id is None):
        raise InvalidInput("platform keys belong to no tenant; tenant keys have scope admin or read")


def issue_api_key(
    *,
    session: Session,
    tenant_id: uuid.UUID | None,
    name: str,
    scope: ApiKeyScope = ApiKeyScope.ADMIN,
    expires_at: datetime | None = None,
    audit: AuditContext = audit_log.SYSTEM,
) -> IssuedKey:
    _check_scope(tenant_id, scope)
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidInput("expires_at is in the past")
    prefix = secrets.token_hex(6)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(id=uuid.uuid4(), tenant_id=tenant_id, name=name, prefix=prefix, key_hash=_hash_key(secret),
                 scope=scope, expires_at=expires_at)
    session.add(key)
    _audit(session, key, audit, "api_key.created", {"scope": scope.value, "name": name})
    session.flush()
    return IssuedKey(key, secret)


def verify_api_key(*, session: Session, secret: str) -> ApiKey:
    """System scope: find the key by its public prefix, compare hashes in constant time.

    NotFound for anything that must not authenticate: malformed, unknown, revoked, expired, or
    belonging to a disabled tenant (the caller answers 401 without saying which).
    """
    parts = secret.split("_")
    if len(secret) > MAX_KEY_CHARS or len(parts) < 3 or not secret.startswith(API_KEY_PREFIX):
        raise NotFound("malformed API key")
    row = session.execute(
        select(ApiKey, Tenant.disabled_at).outerjoin(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.prefix == parts[1])
    ).one_or_none()
    if row is None or not hmac.compare_digest(row[0].key_hash, _hash_key(secret)):
        raise NotFound("unknown API key")
    key, tenant_disabled_at = row
    now = datetime.now(UTC)
    if key_status(key, now=now) != KeyStatus.ACTIVE or tenant_disabled_at is not None:
        raise NotFound("revoked or expired API key, or a disabled tenant")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        # Conditional, so concurrent requests of one key write at most once a minute.
        session.execute(
            update(ApiKey).where(ApiKey.id == key.id,
                                 (ApiKey.last_used_at.is_(None)) | (ApiKey.last_used_at < now - LAST_USED_RESOLUTION))
            .values(last_used_at=now).execution_options(synchronize_session=False)
        )
        set_committed_value(key, "last_used_at", now)  # reflect it without a second UPDATE at flush
    return key


def list_api_keys(
    *, session: Session, tenant_id: uuid.UUID | None, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[ApiKey]:
    stmt = select(ApiKey).where(_owner(tenant_id))
    if after is not None:
        stmt = stmt.where(tuple_(ApiKey.created_at, ApiKey.id) < tuple_(*after))
    stmt = stmt.order_by(ApiKey.created_at.desc(), ApiKey.id.desc()).limit(limit)
    return list(session.execute(stmt).scalars())


def get_api_key(*, session: Session, tenant_id: uuid.UUID | None, key_id: uuid.UUID, lock: bool = False) -> ApiKey:
    stmt = select(ApiKey).where(_owner(tenant_id), ApiKey.id == key_id)
    key = session.execute(stmt.with_for_update() if lock else stmt).scalar_one_or_none()
    if key is None:
        raise NotFound("no such API key")
    return key


def key_by_prefix(*, session: Session, tenant_id: uuid.UUID | None, prefix: str) -> ApiKey:
    key = session.execute(select(ApiKey).where(_owner(tenant_id), ApiKey.prefix == prefix)).scalar_one_or_none()
    if key is None:
        raise NotFound(f"no API key with prefix {prefix!r}")
    return key


def rotate_api_key(
    *,
    session: Session,
    tenant_id: uuid.UUID | None,
    key_id: uuid.UUID,
    grace: timedelta = timedelta(0),
    expires_at: datetime | None = None,
    audit: AuditContext = audit_log.SYSTEM,
) -> IssuedKey:
    """A new key with the same name and scope; the old one stops now, or after `grace`."""
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidInput(f"the grace period must be between 0 and {MAX_GRACE.days} days")
    old = get_api_key(session=session, tenant_id=tenant_id, key_id=key_id, lock=True)
    if key_status(old) != KeyStatus.ACTIVE:
        raise Conflict("this key is already revoked or expired; create a new one instead")
    now = datetime.now(UTC)
    if grace:
        # A grace period lets deployed clients switch over; the old key simply expires then.
        end = now + grace
        old.expires_at = min(old.expires_at, end) if old.expires_at else end
    else:
        old.revoked_at = now
    issued = issue_api_key(session=session, tenant_id=tenant_id, name=old.name, scope=old.scope,
                           expires_at=expires_at, audit=audit)
    _audit(session, old, audit, "api_key.rotated",
           {"new_prefix": issued.key.prefix, "grace_seconds": int(grace.total_seconds())})
    return issued


def revoke_api_key(
    *, session: Session, tenant_id: uuid.UUID | None, key_id: uuid.UUID, audit: AuditContext = audit_log.SYSTEM
) -> ApiKey:
    key = get_api_key(session=session, tenant_id=tenant_id, key_id=key_id, lock=True)
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        _audit(session, key, audit, "api_key.revoked", {})
    return key


def _audit(session: Session, key: ApiKey, audit: AuditContext, action: str, data: dict[str, object]) -> None:
    target = f"api_key:{key.prefix}"
    if key.tenant_id is None:
        log.info("platform key change", extra={"action": action, "target": target, "actor": audit.actor})
        return
    audit_log.record(session=session, tenant_id=key.tenant_id, audit=audit, action=action, target=target,
                     data=dict(data))
