"""A ticket's messages: the raw mail as received, attachments, and splitting one into a new ticket.

Downloads are served as attachments with `nosniff`, and a stored type that a browser would
render as a page or script (HTML, XML, SVG, JavaScript) is replaced by application/octet-stream:
customer mail must never run in our origin.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

from fastapi import Request, Response

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.params import TicketNumber
from admin_api.routes.tickets import actor_of
from core.blobs import BlobStore
from core.errors import NotFound
from core.jobs.outbox import record_events
from core.tickets import operations, queries, raw_mail, service
from core.tickets.schemas import TicketDetail
from core.tickets.views import ticket_detail

router = admin_router("tickets")

_SAFE_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
_ACTIVE_MARKERS = ("html", "xml", "svg", "javascript", "ecmascript", "x-shockwave", "pdf")
_OCTET = "application/octet-stream"


def download_type(stored: str) -> str:
    """The stored content type without parameters, unless a browser could render it as active content."""
    base = stored.split(";", 1)[0].strip().lower()
    if not _SAFE_TYPE.fullmatch(base) or any(marker in base for marker in _ACTIVE_MARKERS):
        return _OCTET
    return base


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact name as RFC 8187 `filename*`."""
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", filename)[:150].strip() or "attachment"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename[:500], safe='')}"


def _download_headers(filename: str) -> dict[str, str]:
    return {"Content-Disposition": content_disposition(filename), "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox", "Cache-Control": "private, no-store"}


@router.get("/tickets/{number}/messages/{message_id}/raw", response_class=Response,
            responses={200: {"content": {"message/rfc822": {}}, "description": "the mail, byte for byte"}})
def download_raw(number: TicketNumber, message_id: uuid.UUID, session: SessionDep) -> Response:
    """The mail exactly as it was received (for mail messages; 404 for others)."""
    ticket = service.get_ticket_by_number(session=session, number=number)
    message = queries.get_message(session=session, ticket=ticket, message_id=message_id)
    if message.raw_inbound_id is None:
        raise NotFound("this message did not come in by mail: there is no raw mail")
    data = raw_mail.raw_mail_bytes(session=session, raw_id=message.raw_inbound_id)
    return Response(content=data, media_type="message/rfc822",
                    headers=_download_headers(f"ticket-{ticket.number}-{message.id}.eml"))


@router.get("/tickets/{number}/attachments/{attachment_id}", response_class=Response,
            responses={200: {"content": {_OCTET: {}}, "description": "the file, as an attachment"}})
def download_attachment(number: TicketNumber, attachment_id: uuid.UUID, session: SessionDep,
                        runtime: RuntimeDep) -> Response:
    ticket = service.get_ticket_by_number(session=session, number=number)
    attachment = queries.get_attachment(session=session, ticket=ticket, attachment_id=attachment_id)
    try:
        data = BlobStore.from_settings(runtime.settings).get(attachment.sha256)
    except FileNotFoundError:
        raise NotFound(f"the file of attachment {attachment.id} is missing from the blob store") from None
    return Response(content=data, media_type=download_type(attachment.content_type),
                    headers=_download_headers(attachment.filename))


@router.post("/tickets/{number}/messages/{message_id}/split", response_model=TicketDetail, status_code=201)
def split(number: TicketNumber, message_id: uuid.UUID, request: Request, response: Response, session: SessionDep,
          principal: TenantPrincipalDep, runtime: RuntimeDep) -> TicketDetail:
    """Move this message into a new ticket linked to this one; answers the new ticket."""
    ticket = service.get_ticket_by_number(session=session, number=number)
    message = queries.get_message(session=session, ticket=ticket, message_id=message_id)
    out = operations.split_message(session=session, ticket=ticket, message=message, actor=actor_of(principal),
                                   audit=audit_context(request, principal))
    record_events(session=session, registry=runtime.registry, events=out.events)
    session.flush()
    response.headers["Location"] = f"{request.url.path.split('/tickets/')[0]}/tickets/{out.value.number}"
    return ticket_detail(session=session, ticket=out.value)
