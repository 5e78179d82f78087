"""`GET /widget/v1/files/<link>`: a file from the chat, by its signed, expiring link.

No token header (a link in an `<a download>` cannot carry one): the link itself is the capability
(inbound/widget/downloads.py). Always a download, never rendered: `Content-Disposition: attachment`,
`nosniff`, and a sandboxing CSP in case a browser ignores both. Altered or expired links are a 403.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from core.blobs import BlobStore
from inbound.widget import downloads
from inbound.widget.api import PREFIX, WidgetRefused, key_of, runtime_of

router = APIRouter(prefix=PREFIX)


@router.get(downloads.FILES_PATH + "{link}", include_in_schema=False)
def download(request: Request, link: str) -> FileResponse:
    try:
        file = downloads.verify_link(key_of(request.app), link)
    except downloads.LinkError as exc:
        raise WidgetRefused(403, str(exc)) from None
    blobs = BlobStore.from_settings(runtime_of(request).settings)
    path = blobs.path(file.sha256)
    if not path.exists():
        raise WidgetRefused(404, "that file is no longer available")
    return FileResponse(path, media_type=file.content_type, headers={  # streamed, not read into memory
        "Content-Disposition": downloads.content_disposition(file.filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Referrer-Policy": "no-referrer",
    })
