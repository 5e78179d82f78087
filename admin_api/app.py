"""The FastAPI app: health, metrics, the admin API, and whatever plugins mount (Slack, widget)."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from admin_api.routes import health, tickets
from core.errors import NotFound, UserError
from core.runtime import Runtime

log = logging.getLogger(__name__)


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Threadline admin API", version="0.1.0")
    app.state.runtime = runtime
    app.include_router(health.router)
    app.include_router(tickets.router, prefix="/api/v1")
    for mount in runtime.registry.http_mounts:
        mount(app, runtime.settings)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=404)

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=400)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled API error", extra={"ref": ref})
        return JSONResponse({"error": "internal error", "reference": ref}, status_code=500)

    return app
