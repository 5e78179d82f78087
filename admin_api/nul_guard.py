"""Refuse text holding a NUL character at the edge of the admin API, with a 422.

Postgres text cannot hold U+0000, so a `q=%00` or a JSON `"\\u0000"` would otherwise reach the
database driver and come back as a 500 (schemathesis found one on /knowledge/search). Checked on
the raw query string and on JSON bodies (the only way JSON carries a NUL is the `\\u0000` escape);
multipart uploads are checked by their own content rules.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin_api.conventions import API_PREFIX
from admin_api.problems import INVALID_INPUT, problem_response

_ENCODED_NUL = re.compile(rb"%00", re.IGNORECASE)
MESSAGE = "text may not contain the NUL character (U+0000)"


def has_nul_in_query(raw_query: bytes) -> bool:
    return b"\x00" in raw_query or _ENCODED_NUL.search(raw_query) is not None


def has_nul_in_json(body: bytes) -> bool:
    # `\\u0000` is an escaped backslash followed by "u0000": only an odd run of backslashes escapes.
    return any(len(m.group(1)) % 2 == 1 for m in re.finditer(rb"(\\+)u0000", body))


class NulGuardMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        if has_nul_in_query(scope.get("query_string", b"")):
            await problem_response(Request(scope), INVALID_INPUT, MESSAGE)(scope, receive, send)
            return
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"").lower()
        if b"json" not in content_type:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if has_nul_in_json(body):
            await problem_response(Request(scope), INVALID_INPUT, MESSAGE)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)
