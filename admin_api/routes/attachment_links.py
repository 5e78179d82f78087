"""`GET /attachments/<link>`: a customer's attachment, by the signed link posted in Slack/Teams.

No bearer key (an agent clicks it in a chat): the link is the capability (core/attachments/links.py).
It names one tenant and one attachment; the row is read as the runtime login in that tenant's
scope (RLS and an explicit tenant filter), so a link cannot reach another tenant's file. Always a
download, never rendered: `Content-Disposition: attachment`, a type sniffed from the bytes (markup
and unknown types as application/octet-stream), `nosniff`, and a sandboxing CSP. An altered,
expired or foreign link is a 403; a file erased since is a 404.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse
from sqlalchemy import select

from core.attachments import links, serving
from core.blobs import BlobStore
from core.db.session import tenant_scope
from core.runtime import Runtime
from core.tickets.models import Attachment

router = APIRouter()


def link_keys(request: Request) -> dict[str, links.LinkKey]:
    """The keys links are verified with, derived once per app (the key file is read the first time)."""
    keys: dict[str, links.LinkKey] | None = getattr(request.app.state, "attachment_link_keys", None)
    if keys is None:
        key = links.link_key(request.app.state.runtime.settings)
        keys = request.app.state.attachment_link_keys = {key.kid: key}
    return keys


def _stored(runtime: Runtime, tenant_id: uuid.UUID, attachment_id: uuid.UUID) -> tuple[str, str] | None:
    with tenant_scope(runtime.factory, tenant_id) as session:
        row = session.execute(select(Attachment.sha256, Attachment.filename).where(
            Attachment.tenant_id == tenant_id, Attachment.id == attachment_id)).first()
    return (row[0], row[1]) if row else None


@router.get(links.DOWNLOAD_PATH + "{link}", include_in_schema=False)
def download(request: Request, link: str) -> FileResponse:
    try:
        claims = links.verify(link_keys(request), link)
    except links.LinkError as exc:
        raise HTTPException(403, str(exc)) from None
    runtime: Runtime = request.app.state.runtime
    stored = _stored(runtime, claims.tenant_id, claims.attachment_id)
    if stored is None:  # signed by us, but not this tenant's attachment: a foreign link
        raise HTTPException(403, "this download link is not valid")
    sha256, filename = stored
    path = BlobStore.from_settings(runtime.settings).path(sha256)
    try:
        with path.open("rb") as fh:
            head = fh.read(serving.SNIFF_BYTES)
    except FileNotFoundError:
        raise HTTPException(404, "that file is no longer available") from None
    return FileResponse(path, media_type=serving.sniff(head), headers={  # streamed, not read into memory
        "Content-Disposition": serving.content_disposition(filename),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
        "Referrer-Policy": "no-referrer",
    })
