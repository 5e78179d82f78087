"""`--tenant`: which tenant a command acts on, the same rule for every command group."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.cli.context import fail
from core.db.session import system_scope
from core.tenancy.models import Tenant


def tenant_from_option(factory: sessionmaker[Session], slug: str | None) -> Tenant:
    """The tenant a command acts on: `--tenant SLUG`, or the only tenant there is. Never "the
    first tenant": with several, a missing or unknown slug exits 2 with the valid slugs."""
    with system_scope(factory) as session:
        tenants = list(session.execute(select(Tenant).order_by(Tenant.slug)).scalars())
    slugs = ", ".join(t.slug for t in tenants)
    if slug:
        found = next((t for t in tenants if t.slug == slug), None)
        if found is None:
            raise fail(f"no tenant {slug!r}; valid --tenant values: {slugs or '(none yet)'}", code=2)
        return found
    if not tenants:
        raise fail("no tenant yet: run `threadline bootstrap` (or `threadline up`)")
    if len(tenants) > 1:
        raise fail(f"there are {len(tenants)} tenants, so --tenant is required; valid values: {slugs}", code=2)
    return tenants[0]
