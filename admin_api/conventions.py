"""The conventions every /api/v1 endpoint follows, and how to follow them in a new router.

Build a router with `admin_router("widgets")` and write plain FastAPI handlers; you get:

- **Auth and scopes** (admin_api.auth). Bearer API keys. `SessionDep` gives a tenant-scoped
  session (RLS on) and rejects platform keys; `PlatformSessionDep` is for tenant management;
  `OwnerSessionDep` serves both kinds on their own objects (API keys). `read` keys may only GET
  (403 otherwise, checked centrally). Revoked/expired keys and disabled tenants → 401.
  Take `principal: TenantPrincipalDep` (or `PrincipalDep`) when you need the tenant id.
- **Errors** (admin_api.problems). Raise core errors (NotFound → 404, Conflict → 409,
  InvalidInput → 422, other UserError → 400) or `ProblemError(KIND, detail)`; the answer is
  RFC 9457 problem+json with a stable `type`. Never return an error body yourself. Add a new
  ProblemKind there when clients need to tell a new error apart.
- **Request id** (admin_api.request_id). Every response has `X-Request-ID`; every log line of
  the request carries `request_id`; problems include it; audit entries store it.
- **Idempotency** (admin_api.idempotency). POST with `Idempotency-Key` is replayed/refused
  for you (the route class does it); handlers must use the request session (SessionDep & co.) so
  the stored response commits with the action.
- **ETag / If-Match** (admin_api.etags). Single-resource GET: `set_etag(response, public)`.
  PATCH/PUT/DELETE: load the row with `lock=True`, build its public model, call
  `check_if_match(request, public)` before changing it, `set_etag` on the new state.
- **Pagination** (admin_api.pagination). Lists take `cursor`/`limit`, the service fetches
  `limit + 1` rows after `decode_cursor(...)`, and `paginate(...)` builds `Page[T]` + `Link`.
- **Rate limits** (admin_api.ratelimit). Per key, token bucket (Redis when present); 429 with
  `Retry-After`. Nothing to do in handlers.
- **Audit**. Every change goes through a core service that takes
  `audit=audit_context(request, principal)` and records who (key prefix + name), what, target,
  client IP and request id. Reads are not audited.
- **OpenAPI**. One tag per resource (the router's), problem responses declared by the router,
  `examples` in the request schemas (core/tenancy/schemas.py shows the pattern).
- **CLI parity**. Handlers hold no business logic: the CLI (core/cli/admin.py) calls the same
  service functions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from admin_api.idempotency import AdminRoute
from admin_api.problems import PROBLEM_RESPONSES

API_PREFIX = "/api/v1"

# OpenAPI tag descriptions, in the order the docs show them.
TAGS: list[dict[str, Any]] = [
    {"name": "tenants", "description": "Tenants (platform keys only): create with a first admin key, disable."},
    {"name": "api-keys", "description": "API keys: create (the secret is shown once), rotate, revoke, expiry."},
    {"name": "inboxes", "description": "Support addresses: reply mode, acknowledgement, Slack binding, IMAP."},
    {"name": "agents", "description": "Agents: created by email, roles, deactivation, linked chat ids."},
    {"name": "audit", "description": "The audit log of admin actions (read-only)."},
    {"name": "tickets", "description": "Tickets: filters, full-text search, update, reply, note, merge, split, "
                                        "raw mail and attachments."},
    {"name": "mail", "description": "Held mail (release) and failed mail (replay)."},
    {"name": "jobs", "description": "Background jobs: dead letters, retry."},
    {"name": "webhooks", "description": "Webhooks: signed POSTs on ticket and message events, retried, logged."},
    {"name": "knowledge", "description": "The knowledge base: documents, search, retrieval evaluation, draft stats."},
]


def admin_router(tag: str) -> APIRouter:
    """A router for one resource: its OpenAPI tag, the problem responses, Idempotency-Key on POST."""
    return APIRouter(tags=[tag], route_class=AdminRoute, responses=dict(PROBLEM_RESPONSES))
