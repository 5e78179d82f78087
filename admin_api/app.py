"""The FastAPI app: health, metrics, the admin API, and whatever plugins mount (Slack, widget).

The /api/v1 conventions (errors, auth, idempotency, pagination, ETags, rate limits, request ids)
are described in admin_api.conventions.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from admin_api.conventions import API_PREFIX, TAGS
from admin_api.etags import NotModifiedMiddleware
from admin_api.nul_guard import NulGuardMiddleware
from admin_api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from admin_api.ratelimit import RateLimit, make_limiter
from admin_api.request_id import RequestIdMiddleware, install_log_record_factory
from admin_api.routes import (
    agents,
    api_keys,
    attachment_links,
    audit,
    health,
    held,
    inboxes,
    jobs,
    knowledge,
    messages,
    tenants,
    tickets,
    webhooks,
)
from core.crypto import SecretBox
from core.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(runtime: Runtime, *, rate_limit: RateLimit | None = None) -> FastAPI:
    # /openapi.json stays on (clients and contract tests generate from it; it holds no data);
    # the interactive pages load third-party JS from a CDN, so they are served only on request.
    docs = runtime.settings.api_docs
    app = FastAPI(title="Threadline admin API", version="0.2.0", openapi_tags=TAGS,
                  description="Bearer API keys; errors are RFC 9457 problem+json (see each `type`).",
                  docs_url="/docs" if docs else None, redoc_url="/redoc" if docs else None)
    app.state.runtime = runtime
    app.state.limiter = make_limiter(rate_limit or RateLimit(), runtime.redis_url)
    app.state.secret_box = SecretBox.from_settings(runtime.settings)  # seals stored idempotent responses
    install_log_record_factory()
    app.add_middleware(NulGuardMiddleware)  # innermost: its 422 carries the request id
    app.add_middleware(NotModifiedMiddleware)  # inside the request id, so a 304 carries it too
    app.add_middleware(RequestIdMiddleware)
    install_problem_handlers(app)
    app.include_router(health.router)
    app.include_router(attachment_links.router)  # signed links, no bearer key: the link is the capability
    for module in (tenants, api_keys, inboxes, agents, audit, tickets, messages, held, jobs, webhooks, knowledge):
        app.include_router(module.router, prefix=API_PREFIX)
    for mount in runtime.registry.http_mounts:
        mount(app, runtime.settings)

    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with error responses declared as problem+json only (not also JSON)."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                             tags=app.openapi_tags)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for status, answer in operation.get("responses", {}).items():
                    content = answer.get("content", {})
                    if status >= "400" and PROBLEM_MEDIA_TYPE in content and "application/json" in content:
                        answer["content"] = {PROBLEM_MEDIA_TYPE: content["application/json"]}
        _add_links(schema)
        app.openapi_schema = schema
    return app.openapi_schema


# OpenAPI links (3.0 §4.7.20): what a create answers is read and changed through its id, so clients and
# schemathesis' stateful phase can chain them. (collection, path parameter, where the 201 body holds it)
_CREATE_LINKS = (
    ("/api/v1/inboxes", "inbox_id", "$response.body#/id"),
    ("/api/v1/agents", "agent_id", "$response.body#/id"),
    ("/api/v1/tickets", "number", "$response.body#/number"),
)


def _add_links(schema: dict[str, Any]) -> None:
    paths = schema.get("paths", {})
    for collection, param, source in _CREATE_LINKS:
        created = paths.get(collection, {}).get("post", {}).get("responses", {}).get("201")
        item = paths.get(f"{collection}/{{{param}}}", {})
        if created is None:
            continue
        links = created.setdefault("links", {})
        for method in ("get", "patch"):
            if method in item:
                name = f"{method.capitalize()}{collection.rsplit('/', 1)[-1].capitalize()}ById"
                links[name] = {"operationId": item[method]["operationId"], "parameters": {param: source}}
