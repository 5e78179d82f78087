"""The public widget API under /widget/v1 (separate from the admin API's /api/v1).

Every request names its host page's origin and is refused unless the inbox allows it. The chat
UI runs in an iframe on our origin, so its requests carry our Origin (or none, for a same-origin
GET) and name the host page in `X-Threadline-Embed-Origin`; `frame-ancestors` makes browsers
refuse that frame anywhere else. Origins stop other sites' pages, not scripts: the visitor
token (a header, never a URL) is what authenticates.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated

import redis
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from core.blobs import BlobStore
from core.crypto import SecretBox
from core.db.session import system_scope, tenant_scope
from core.runtime import Runtime
from core.settings import Settings
from core.tenancy.models import Inbox
from inbound.ingest.widget_steps import WidgetFile
from inbound.widget import downloads, limits, service, tokens, uploads
from inbound.widget.config import WidgetConfig, parse_origin
from inbound.widget.identity import IdentityRefusedError, check_identity
from inbound.widget.models import WidgetConversation, WidgetMessage
from inbound.widget.schemas import (
    ConversationPublic,
    ConversationStart,
    HistoryPage,
    WidgetMessageCreate,
    WidgetMessagePublic,
)
from inbound.widget.tokens import TOKEN_HEADER, TokenError, VisitorClaims

PREFIX = "/widget/v1"
EMBED_HEADER = "X-Threadline-Embed-Origin"


class WidgetRefused(HTTPException):
    pass


# OpenAPI: the refusals each operation may answer, in the shape the handlers in `mount` write.
_ERROR_BODY = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
_REFUSAL_TEXT = {
    400: "a body that is not JSON, or an attachment reference that is not this conversation's or whose file is gone",
    401: "missing, expired or revoked visitor token: start the conversation again",
    403: "this site (Origin / embed origin) may not use this chat, or the visitor identity was refused",
    404: "no web chat on this inbox (unknown, or the widget is disabled)",
    422: "the request is not valid (RFC 9457 problem details, as on the admin API)",
    429: "too many chats or messages; see Retry-After",
}
# Framework errors (unparsable or invalid bodies) go through the app's problem handler instead.
_PROBLEM_BODY = {"type": "object", "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                                   "status": {"type": "integer"}, "detail": {"type": "string"}},
                 "required": ["type", "title", "status"]}


def _refusals(*statuses: int) -> dict[int | str, dict[str, object]]:
    docs: dict[int | str, dict[str, object]] = {}
    for status in statuses:
        content: dict[str, object] = {}
        if status == 400:  # either kind (checkers may match problem+json to the JSON entry too)
            either = {"anyOf": [_ERROR_BODY, _PROBLEM_BODY]}
            content = {"application/json": {"schema": either}, "application/problem+json": {"schema": either}}
        elif status == 422:  # a body that is not valid: the app's problem handler
            content["application/problem+json"] = {"schema": _PROBLEM_BODY}
        else:
            content["application/json"] = {"schema": _ERROR_BODY}
        doc: dict[str, object] = {"description": _REFUSAL_TEXT[status], "content": content}
        if status == 429:
            doc["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
        docs[status] = doc
    return docs


@dataclass(frozen=True)
class InboxWidget:
    inbox_id: uuid.UUID
    tenant_id: uuid.UUID
    config: WidgetConfig


@dataclass(frozen=True)
class Visitor:
    claims: VisitorClaims
    inbox: InboxWidget
    origin: str


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def key_of(app: FastAPI) -> bytes:
    """The token key, derived once per app (the key file is read, or created, the first time)."""
    key: bytes | None = getattr(app.state, "widget_token_key", None)
    if key is None:
        key = app.state.widget_token_key = tokens.token_key(app.state.runtime.settings)
    return key


def secret_box_of(app: FastAPI) -> SecretBox:
    box: SecretBox | None = getattr(app.state, "widget_secret_box", None)
    if box is None:
        box = app.state.widget_secret_box = SecretBox.from_settings(app.state.runtime.settings)
    return box


def redis_of(app: FastAPI) -> redis.Redis | None:
    client: redis.Redis | None = getattr(app.state, "widget_redis", None)
    url = app.state.runtime.redis_url
    if client is None and url:
        client = app.state.widget_redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
    return client


def client_ip(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers / forwarded_allow_ips so this is the visitor.
    return request.client.host if request.client else "unknown"


def load_inbox(runtime: Runtime, inbox_id: uuid.UUID) -> InboxWidget:
    """Address → inbox is a cross-tenant lookup (like SMTP RCPT); everything after is tenant-scoped."""
    with system_scope(runtime.factory) as session:
        row = session.execute(select(Inbox.tenant_id, Inbox.widget_config).where(Inbox.id == inbox_id)).first()
    config = WidgetConfig.from_json(row[1]) if row else None
    if row is None or config is None or not config.enabled:
        raise WidgetRefused(404, "no web chat here")
    return InboxWidget(inbox_id, row[0], config)


def effective_origin(settings: Settings, *, origin: str | None, embed: str | None) -> str | None:
    """The host page's origin: our own frame names it; any other caller is its own Origin."""
    own = parse_origin(settings.public_url)
    parsed = parse_origin(origin)
    if origin is None or (parsed is not None and parsed == own):
        return embed
    return origin


def check_origin(settings: Settings, inbox: InboxWidget, *, origin: str | None, embed: str | None) -> str:
    effective = effective_origin(settings, origin=origin, embed=embed)
    if not inbox.config.allows(effective):
        raise WidgetRefused(403, "this site is not allowed to use this chat")
    assert effective is not None
    return effective


def visitor(
    request: Request,
    token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
    origin: Annotated[str | None, Header()] = None,
    embed: Annotated[str | None, Header(alias=EMBED_HEADER)] = None,
) -> Visitor:
    runtime = runtime_of(request)
    try:
        claims = tokens.verify(key_of(request.app), token)
    except TokenError as exc:
        raise WidgetRefused(401, f"visitor token refused ({exc}): start the conversation again") from None
    inbox = load_inbox(runtime, claims.inbox_id)
    return Visitor(claims, inbox, check_origin(runtime.settings, inbox, origin=origin, embed=embed))


def _current(session_conv: WidgetConversation | None, claims: VisitorClaims) -> WidgetConversation:
    if session_conv is None or session_conv.token_version != claims.version:
        raise WidgetRefused(401, "visitor token revoked: start the conversation again")
    return session_conv


router = APIRouter(prefix=PREFIX)


@router.post("/conversations", response_model=ConversationPublic, responses=_refusals(400, 403, 404, 422, 429))
def start(
    body: ConversationStart,
    request: Request,
    token: Annotated[str | None, Header(alias=TOKEN_HEADER)] = None,
    origin: Annotated[str | None, Header()] = None,
    embed: Annotated[str | None, Header(alias=EMBED_HEADER)] = None,
) -> ConversationPublic:
    """Start, or resume with a still-valid token (which is rotated: the answer carries a new one)."""
    runtime = runtime_of(request)
    inbox = load_inbox(runtime, body.inbox_id)
    host = check_origin(runtime.settings, inbox, origin=origin, embed=embed)
    key = key_of(request.app)
    try:
        claims: VisitorClaims | None = tokens.verify(key, token) if token else None
    except TokenError:
        claims = None  # expired or foreign: a fresh conversation, never an error on the host page
    limits.check(redis_of(request.app), limits.START_LIMITS,
                 {"ip": client_ip(request), "inbox": str(inbox.inbox_id)}, action="new chats")
    identity = check_identity(inbox.config, secret_box_of(request.app), user_id=body.user_id,
                              user_hash=body.user_hash, user_jwt=body.user_jwt)
    with tenant_scope(runtime.factory, inbox.tenant_id) as session:
        resume = None
        if claims is not None and claims.inbox_id == inbox.inbox_id:
            resume = session.get(WidgetConversation, claims.conversation_id)
            if resume is not None and resume.token_version != claims.version:
                resume = None
        conversation = service.start_conversation(
            session=session, tenant_id=inbox.tenant_id, inbox_id=inbox.inbox_id, resume=resume, identity=identity,
            name=body.name, email=body.email, origin=host,
        )
        issued = tokens.issue(key, conversation_id=conversation.id, inbox_id=inbox.inbox_id,
                              version=conversation.token_version)
        last_seq = conversation.last_seq
    return ConversationPublic(
        conversation_id=conversation.id, token=issued, expires_at=tokens.verify(key, issued).expires,
        last_seq=last_seq, title=inbox.config.title, color=inbox.config.color, identified=identity.verified,
    )


@router.post("/messages", response_model=WidgetMessagePublic, status_code=201,
             responses=_refusals(400, 401, 403, 404, 422, 429))
def post_message(
    body: WidgetMessageCreate, response: Response, request: Request, who: Annotated[Visitor, Depends(visitor)]
) -> WidgetMessagePublic:
    """Idempotent by client_message_id: a retry after a timeout answers 200 with the first copy."""
    runtime = runtime_of(request)
    limits.check(redis_of(request.app), limits.MESSAGE_LIMITS, {
        "token": str(who.claims.conversation_id), "ip": client_ip(request), "inbox": str(who.inbox.inbox_id),
    })
    with tenant_scope(runtime.factory, who.inbox.tenant_id) as session:
        conversation = _current(service.lock_conversation(session=session, conversation_id=who.claims.conversation_id),
                                who.claims)
        row, created = service.post_visitor_message(
            session=session, conversation=conversation, client_message_id=body.client_message_id, text=body.text,
            files=attached_files(request, who, body.attachments),
        )
        public = public_message(key_of(request.app), row)
    if not created:
        response.status_code = 200
    return public


def public_message(key: bytes, row: WidgetMessage) -> WidgetMessagePublic:
    """A transcript row as the visitor sees it, each stored file with a fresh signed download link."""
    public = WidgetMessagePublic.model_validate(row)
    for shown, stored in zip(public.attachments, row.attachments, strict=True):
        sha = stored.get("sha256")
        if isinstance(sha, str):
            link, shown.expires_at = downloads.sign_link(
                key, sha256=sha, filename=shown.filename, content_type=shown.content_type,
                conversation_id=row.conversation_id)
            shown.url = f"{PREFIX}{downloads.FILES_PATH}{link}"
    return public


def attached_files(request: Request, who: Visitor, refs: list[str]) -> tuple[WidgetFile, ...]:
    """The files a message refers to: refs signed by us for this conversation, blobs present."""
    blobs = BlobStore.from_settings(runtime_of(request).settings)
    files: list[WidgetFile] = []
    for value in refs:
        try:
            ref = uploads.verify_ref(key_of(request.app), value, conversation_id=who.claims.conversation_id)
        except uploads.UploadRefError as exc:
            raise WidgetRefused(400, str(exc)) from None
        if not blobs.path(ref.sha256).exists():
            raise WidgetRefused(400, "that attachment is gone: upload the file again")
        files.append(WidgetFile(ref.sha256, ref.size, ref.content_type, ref.filename))
    return tuple(files)


@router.get("/messages", response_model=HistoryPage, responses=_refusals(401, 403, 404, 422))
def get_history(
    request: Request, who: Annotated[Visitor, Depends(visitor)], after: Annotated[int, Query(ge=0)] = 0
) -> HistoryPage:
    runtime = runtime_of(request)
    with tenant_scope(runtime.factory, who.inbox.tenant_id) as session:
        conversation = _current(session.get(WidgetConversation, who.claims.conversation_id), who.claims)
        rows = service.history(session=session, conversation_id=conversation.id, after=after)
        key = key_of(request.app)
        messages = [public_message(key, r) for r in rows]
    return HistoryPage(messages=messages, last_seq=messages[-1].seq if messages else after)


def mount(app: FastAPI, settings: Settings) -> None:
    from inbound.widget import download_routes, pages, socket, upload_routes

    @app.exception_handler(WidgetRefused)
    async def _refused(_: Request, exc: WidgetRefused) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    @app.exception_handler(limits.RateLimitedError)
    async def _limited(_: Request, exc: limits.RateLimitedError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(IdentityRefusedError)
    async def _identity(_: Request, exc: IdentityRefusedError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=403)

    app.include_router(router)
    app.include_router(upload_routes.router)
    app.include_router(download_routes.router)
    app.include_router(pages.router)
    app.include_router(socket.router)
