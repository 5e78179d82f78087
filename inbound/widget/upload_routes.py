"""`POST /widget/v1/attachments`: one file per request, multipart field `file`.

Bounded before anything is read: the declared length is checked first (the HTTP server refuses a
body longer than it declares), then the part itself. The answer is a signed ref for the next
message; see inbound/widget/uploads.py for why no row is written here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from core.blobs import BlobStore
from core.db.session import tenant_scope
from inbound.widget import limits, uploads
from inbound.widget.api import PREFIX, Visitor, WidgetRefused, client_ip, key_of, redis_of, runtime_of, visitor
from inbound.widget.models import WidgetConversation
from inbound.widget.schemas import UploadPublic

router = APIRouter(prefix=PREFIX)

TOO_LARGE = f"that file is too large: the limit is {uploads.UPLOAD_MAX_BYTES // (1024 * 1024)} MiB"


def _token_current(request: Request, who: Visitor) -> None:
    with tenant_scope(runtime_of(request).factory, who.inbox.tenant_id) as session:
        version = session.execute(select(WidgetConversation.token_version)
                                  .where(WidgetConversation.id == who.claims.conversation_id)).scalar()
    if version != who.claims.version:
        raise WidgetRefused(401, "visitor token revoked: start the conversation again")


def _declared_length(request: Request) -> int:
    try:
        declared = int(request.headers["content-length"])
    except (KeyError, ValueError):
        raise WidgetRefused(411, "uploads need a Content-Length") from None
    if declared > uploads.UPLOAD_MAX_BYTES + uploads.MULTIPART_OVERHEAD:
        raise WidgetRefused(413, TOO_LARGE)
    return declared


@router.post("/attachments", response_model=UploadPublic, status_code=201)
async def upload(request: Request, who: Annotated[Visitor, Depends(visitor)]) -> UploadPublic:
    _declared_length(request)
    await run_in_threadpool(limits.check, redis_of(request.app), limits.UPLOAD_LIMITS, {
        "token": str(who.claims.conversation_id), "ip": client_ip(request), "inbox": str(who.inbox.inbox_id),
    }, action="uploads")
    await run_in_threadpool(_token_current, request, who)
    async with request.form(max_files=1, max_fields=1) as form:
        part = form.get("file")
        if not isinstance(part, UploadFile):
            raise WidgetRefused(400, "send the file as the multipart field 'file'")
        data = await part.read(uploads.UPLOAD_MAX_BYTES + 1)
        filename = uploads.clean_filename(part.filename)
    if len(data) > uploads.UPLOAD_MAX_BYTES:
        raise WidgetRefused(413, TOO_LARGE)
    if not data:
        raise WidgetRefused(400, "that file is empty")
    try:
        content_type = uploads.sniff(data)  # the part's own Content-Type is the browser's guess: ignored
    except uploads.UploadRefusedError as exc:
        raise WidgetRefused(415, str(exc)) from None
    blobs = BlobStore.from_settings(runtime_of(request).settings)
    sha = await run_in_threadpool(blobs.put, data)
    ref = uploads.make_ref(key_of(request.app), sha256=sha, size=len(data), content_type=content_type,
                           filename=filename, conversation_id=who.claims.conversation_id)
    return UploadPublic(ref=ref, filename=filename, content_type=content_type, size=len(data))
