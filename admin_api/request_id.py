"""A request id on every response (`X-Request-ID`) and on every log line written for the request.

A sane incoming `X-Request-ID` (from a proxy or the client) is kept so one id follows a request
across systems; anything else is replaced. The id lives in a contextvar: sync handlers run in a
worker thread, and Starlette copies the context into it, so their log lines carry it too.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from contextvars import ContextVar
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("admin_api.access")

_REQUEST_ID: ContextVar[str | None] = ContextVar("threadline_request_id", default=None)
_SANE = re.compile(r"[A-Za-z0-9._:-]{8,128}")
HEADER = "X-Request-ID"


def current_request_id() -> str | None:
    return _REQUEST_ID.get()


def _choose(incoming: str | None) -> str:
    if incoming and _SANE.fullmatch(incoming):
        return incoming
    return secrets.token_hex(8)


class RequestIdMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware): sets the id before any other code runs, adds the header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"x-request-id"), None)
        request_id = _choose(incoming)
        scope.setdefault("state", {})["request_id"] = request_id  # for the 500 handler, outside this context
        token = _REQUEST_ID.set(request_id)
        started, status = time.perf_counter(), 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            log.info("%s %s %s", scope["method"], scope["path"], status,
                     extra={"status": status, "duration_ms": round((time.perf_counter() - started) * 1000, 1)})
            _REQUEST_ID.reset(token)


_installed = False


def install_log_record_factory() -> None:
    """Every LogRecord made while a request is handled gets `request_id` (idempotent).

    A record factory rather than a logging.Filter: filters on a logger miss records propagated
    from child loggers, and handlers are replaced whenever logging is configured again.
    """
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = _REQUEST_ID.get()
        if request_id is not None:
            record.request_id = request_id
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
