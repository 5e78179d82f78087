"""RFC 9457 problem details: the one error format of the API.

Every error answer is `application/problem+json` with a stable `type` URI per kind of error
(clients switch on `type`, never on `title` or `detail`), the HTTP `status`, a human `detail`,
the `instance` (the request path) and our `request_id`. Raise `ProblemError(KIND, detail)` in
routes; domain errors (core.errors) and framework errors (404/405 routing, 422 validation) are
mapped here so no handler ever builds an error body by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from admin_api.request_id import current_request_id
from core.errors import Conflict, InvalidInput, NotFound, UserError

log = logging.getLogger(__name__)

PROBLEM_BASE = "https://threadline.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


@dataclass(frozen=True)
class ProblemKind:
    slug: str
    status: int
    title: str

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


BAD_REQUEST = ProblemKind("bad-request", 400, "Bad request")
INVALID_CURSOR = ProblemKind("invalid-cursor", 400, "Invalid pagination cursor")
UNAUTHORIZED = ProblemKind("unauthorized", 401, "Missing or invalid API key")
FORBIDDEN = ProblemKind("forbidden", 403, "This API key may not do that")
NOT_FOUND = ProblemKind("not-found", 404, "Not found")
METHOD_NOT_ALLOWED = ProblemKind("method-not-allowed", 405, "Method not allowed")
CONFLICT = ProblemKind("conflict", 409, "Conflict with the current state")
IDEMPOTENCY_IN_FLIGHT = ProblemKind("idempotency-key-in-flight", 409, "A request with this Idempotency-Key is "
                                    "still being processed")
PRECONDITION_FAILED = ProblemKind("precondition-failed", 412, "The resource changed (stale If-Match)")
VALIDATION = ProblemKind("validation-error", 422, "The request is not valid")
INVALID_INPUT = ProblemKind("invalid-input", 422, "The request cannot be accepted as it is")
IDEMPOTENCY_MISMATCH = ProblemKind("idempotency-key-reused", 422, "This Idempotency-Key was used with another "
                                   "request")
RATE_LIMITED = ProblemKind("rate-limited", 429, "Too many requests for this API key")
INTERNAL = ProblemKind("internal-error", 500, "Internal error")

_BY_STATUS = {k.status: k for k in (BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, METHOD_NOT_ALLOWED, CONFLICT,
                                     PRECONDITION_FAILED, VALIDATION, RATE_LIMITED, INTERNAL)}


def kind_for_status(status: int) -> ProblemKind:
    """Framework errors we did not raise ourselves (e.g. 413 from a proxy rule): a generic kind."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return ProblemKind(phrase.lower().replace(" ", "-").replace("'", ""), status, phrase)


class Problem(BaseModel):
    """The body of every error (RFC 9457)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "https://threadline.dev/problems/not-found", "title": "Not found", "status": 404,
        "detail": "no such inbox", "instance": "/api/v1/inboxes/0b6f…", "request_id": "c0ffee12ab34cd56",
    }]})

    type: str = Field(description="stable URI per kind of error; switch on this")
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = Field(default=None, description="validation errors (422 only)")


class ProblemError(Exception):
    def __init__(self, kind: ProblemKind, detail: str | None = None, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail or kind.title)
        self.kind, self.detail, self.headers, self.extra = kind, detail, headers or {}, extra


def problem_response(request: Request, kind: ProblemKind, detail: str | None = None, *,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    request_id = current_request_id() or getattr(request.state, "request_id", None)
    body: dict[str, Any] = {"type": kind.type, "title": kind.title, "status": kind.status, "detail": detail,
                            "instance": request.url.path, "request_id": request_id, **extra}
    out_headers = dict(headers or {})
    if request_id:
        out_headers.setdefault("X-Request-ID", request_id)
    return JSONResponse(jsonable_encoder(body), status_code=kind.status, headers=out_headers,
                        media_type=PROBLEM_MEDIA_TYPE)


def problem_for_exception(request: Request, exc: Exception) -> JSONResponse | None:
    """The problem answer for an error we know; None for an unexpected one (a 500)."""
    if isinstance(exc, ProblemError):
        return problem_response(request, exc.kind, exc.detail, headers=exc.headers, **exc.extra)
    if isinstance(exc, RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in exc.errors()]
        fields = ", ".join(".".join(str(p) for p in e["loc"] if p != "body") or "body" for e in errors)
        return problem_response(request, VALIDATION, f"invalid: {fields}", errors=errors)
    if isinstance(exc, StarletteHTTPException):
        kind = kind_for_status(exc.status_code)
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(request, kind, detail, headers=dict(exc.headers or {}))
    if isinstance(exc, NotFound):
        return problem_response(request, NOT_FOUND, str(exc))
    if isinstance(exc, Conflict):
        return problem_response(request, CONFLICT, str(exc))
    if isinstance(exc, InvalidInput):
        return problem_response(request, INVALID_INPUT, str(exc))
    if isinstance(exc, UserError):
        return problem_response(request, BAD_REQUEST, str(exc))
    return None


def install_problem_handlers(app: FastAPI) -> None:
    async def known(request: Request, exc: Exception) -> JSONResponse:
        response = problem_for_exception(request, exc)
        return response if response is not None else await unexpected(request, exc)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The request id is the reference an operator greps the logs for.
        # Runs outside the request-id middleware (Starlette's outermost layer), so pass the id by hand.
        log.error("unhandled API error", exc_info=exc,
                  extra={"request_id": getattr(request.state, "request_id", None)})
        return problem_response(request, INTERNAL, "an internal error occurred; quote the request id when reporting")

    for exc_class in (ProblemError, RequestValidationError, StarletteHTTPException, UserError):
        app.add_exception_handler(exc_class, known)
    app.add_exception_handler(Exception, unexpected)


def _problem_doc(description: str) -> dict[str, Any]:
    return {"description": description, "model": Problem, "content": {PROBLEM_MEDIA_TYPE: {}}}


# For OpenAPI: declared on every admin router so clients (and schemathesis) know the error shape.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_doc("bad request (e.g. an invalid pagination cursor)"),
    401: _problem_doc("missing, invalid, revoked or expired API key"),
    403: _problem_doc("the key's scope does not allow this"),
    404: _problem_doc("not found (or another tenant's)"),
    409: _problem_doc("conflict with the current state"),
    412: _problem_doc("stale If-Match"),
    422: _problem_doc("invalid request, or an Idempotency-Key reused with another body"),
    429: _problem_doc("rate limited; see Retry-After"),
}
