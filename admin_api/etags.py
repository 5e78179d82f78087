"""`ETag` on single-resource GETs and `If-Match` on PATCH/PUT/DELETE (RFC 9110 §8.8.3, §13.1.1).

The tag is a hash of the resource's public JSON, so it changes exactly when what the client saw
changes, with no version column. A write loads the row FOR UPDATE, compares the client's
If-Match with the current tag (412 when stale), then applies the change: two admins editing
the same inbox cannot silently overwrite each other. If-Match is optional (no 428).

A GET or HEAD with `If-None-Match` naming the current tag is answered `304 Not Modified` without a
body (RFC 9110 §13.1.2, §15.4.5), so a client polling a resource re-downloads it only when it changed.
"""

from __future__ import annotations

import hashlib

from fastapi import Request, Response
from pydantic import BaseModel
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin_api.problems import PRECONDITION_FAILED, ProblemError


def etag_of(resource: BaseModel) -> str:
    return '"' + hashlib.sha256(resource.model_dump_json().encode()).hexdigest()[:32] + '"'


def set_etag(response: Response, resource: BaseModel) -> None:
    response.headers["ETag"] = etag_of(resource)


def check_if_match(request: Request, current: BaseModel) -> None:
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return
    # Weak comparison is fine here: our tags are strong, and W/ only comes from intermediaries.
    offered = {t.strip().removeprefix("W/") for t in header.split(",")}
    if etag_of(current) not in offered:
        raise ProblemError(PRECONDITION_FAILED, "the resource changed since you read it: GET it again, re-apply "
                         "your change, and send the new ETag in If-Match",
                         headers={"ETag": etag_of(current)})


# What a 304 keeps of the 200 it replaces (RFC 9110 §15.4.5); the body and its headers go.
_KEPT_ON_304 = {b"etag", b"cache-control", b"content-location", b"date", b"expires", b"vary", b"x-request-id"}


def none_match(header: str, etag: str) -> bool:
    """True when `If-None-Match` names `etag` (weak comparison, RFC 9110 §13.1.2) or is `*`."""
    offered = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in offered or etag.removeprefix("W/") in offered


class NotModifiedMiddleware:
    """Turns a 200 GET/HEAD whose `ETag` the client already holds into a bodiless 304.

    Pure ASGI, after the route ran: every route that sets an ETag gets conditional GETs, with
    no route code (the tag is a hash of the body, so it is only known once the route answered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"if-none-match"), None)
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or header is None:
            await self.app(scope, receive, send)
            return
        not_modified = False

        async def send_maybe_304(message: Message) -> None:
            nonlocal not_modified
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                etag = next((v.decode("latin-1") for k, v in headers if k.lower() == b"etag"), None)
                if message["status"] == 200 and etag is not None and none_match(header, etag):
                    not_modified = True
                    message = {"type": "http.response.start", "status": 304,
                               "headers": [(k, v) for k, v in headers if k.lower() in _KEPT_ON_304]}
            elif message["type"] == "http.response.body" and not_modified:
                if message.get("more_body", False):
                    return  # swallow the body; the last chunk below ends the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_maybe_304)
