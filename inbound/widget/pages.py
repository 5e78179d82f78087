"""The script, the iframe page and its assets, served from our origin.

The frame page carries `Content-Security-Policy: frame-ancestors <the inbox's allowed origins>`
(browsers then refuse to show it inside any other site) and a strict policy for itself: only our
own scripts, styles and connections, no inline code.
"""

from __future__ import annotations

import uuid
from functools import cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from core.runtime import Runtime
from inbound.widget.api import PREFIX, WidgetRefused, load_inbox
from inbound.widget.config import parse_origin

STATIC = Path(__file__).parent / "static"

router = APIRouter(prefix=PREFIX)


@cache
def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _static(name: str, media_type: str, *, max_age: int = 300) -> Response:
    # Short cache: a release reaches every site within minutes; the loader URL never changes.
    return Response(_asset(name), media_type=media_type, headers={
        "Cache-Control": f"public, max-age={max_age}", "X-Content-Type-Options": "nosniff",
        "Cross-Origin-Resource-Policy": "cross-origin",
    })


@router.get("/loader.js", include_in_schema=False)
def loader() -> Response:
    return _static("loader.js", "text/javascript; charset=utf-8")


@router.get("/app.js", include_in_schema=False)
def app_js() -> Response:
    return _static("app.js", "text/javascript; charset=utf-8")


@router.get("/app.css", include_in_schema=False)
def app_css() -> Response:
    return _static("app.css", "text/css; charset=utf-8")


REFUSED_PAGE = (
    b'<!doctype html><html lang="en"><meta charset="utf-8"><title>Chat unavailable</title>'
    b'<p role="alert" id="refused">This chat is not available on this site.</p></html>'
)


def refused_page() -> Response:
    """The frame asked for a host page the inbox does not allow: a static 403 the visitor can read
    (no script, nothing of the chat), instead of a JSON body shown raw in the iframe."""
    return Response(REFUSED_PAGE, status_code=403, media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": "default-src 'none'", "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    })


@router.get("/frame", include_in_schema=False)
async def frame(request: Request, inbox: Annotated[str, Query()], host: Annotated[str, Query()] = "") -> Response:
    runtime: Runtime = request.app.state.runtime
    try:
        widget = await run_in_threadpool(load_inbox, runtime, uuid.UUID(inbox))
    except ValueError:
        raise WidgetRefused(404, "no web chat here") from None
    if not widget.config.allows(host):
        return refused_page()
    own = parse_origin(runtime.settings.public_url)
    sockets = f"{'wss' if own and own.scheme == 'https' else 'ws'}://{str(own).split('://', 1)[1]}" if own else ""
    csp = "; ".join([
        "default-src 'none'", "script-src 'self'", "style-src 'self'", f"connect-src 'self' {sockets}".strip(),
        "img-src 'self' data:", "base-uri 'none'", "form-action 'none'", widget.config.frame_ancestors(),
    ])
    return Response(_asset("frame.html"), media_type="text/html; charset=utf-8", headers={
        "Content-Security-Policy": csp, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
