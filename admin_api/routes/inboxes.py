"""Inboxes: addresses, reply mode, acknowledgement, Slack channel binding, and their IMAP account."""

from __future__ import annotations

import uuid

from fastapi import Request, Response

from admin_api.auth import TenantPrincipalDep, audit_context
from admin_api.conventions import admin_router
from admin_api.deps import RuntimeDep, SessionDep
from admin_api.etags import check_if_match, set_etag
from admin_api.pagination import DEFAULT_LIMIT, CursorQuery, LimitQuery, Page, decode_cursor, paginate
from core.crypto import SecretBox
from core.errors import NotFound
from core.tenancy import audit as audit_log
from core.tenancy import inboxes as service
from core.tenancy.schemas import ImapAccountPublic, ImapAccountSet, InboxCreate, InboxPublic, InboxUpdate
from core.tenancy.service import create_inbox
from inbound.imap import accounts

router = admin_router("inboxes")


@router.post("/inboxes", status_code=201, response_model=InboxPublic)
def create(body: InboxCreate, request: Request, response: Response, session: SessionDep,
           principal: TenantPrincipalDep) -> InboxPublic:
    inbox = create_inbox(
        session=session, tenant_id=principal.require_tenant(), address=body.address, name=body.name,
        slack_channel_id=body.slack_channel_id, reply_mode=body.reply_mode,
        send_acknowledgement=body.send_acknowledgement, acknowledgement_text=body.acknowledgement_text,
        audit=audit_context(request, principal),
    )
    public = InboxPublic.model_validate(inbox)
    response.headers["Location"] = f"{request.url.path}/{inbox.id}"
    set_etag(response, public)
    return public


@router.get("/inboxes", response_model=Page[InboxPublic])
def list_(request: Request, response: Response, session: SessionDep, principal: TenantPrincipalDep,
          cursor: CursorQuery = None, limit: LimitQuery = DEFAULT_LIMIT) -> Page[InboxPublic]:
    rows = service.list_inboxes(session=session, tenant_id=principal.require_tenant(),
                                after=decode_cursor(cursor, id_type=uuid.UUID), limit=limit + 1)
    return paginate(request, response, rows, limit=limit, to_public=InboxPublic.model_validate)


@router.get("/inboxes/{inbox_id}", response_model=InboxPublic)
def show(inbox_id: uuid.UUID, response: Response, session: SessionDep, principal: TenantPrincipalDep) -> InboxPublic:
    public = InboxPublic.model_validate(
        service.get_inbox(session=session, tenant_id=principal.require_tenant(), inbox_id=inbox_id))
    set_etag(response, public)
    return public


@router.patch("/inboxes/{inbox_id}", response_model=InboxPublic)
def update(inbox_id: uuid.UUID, body: InboxUpdate, request: Request, response: Response, session: SessionDep,
           principal: TenantPrincipalDep) -> InboxPublic:
    """Change only the fields sent; `"slack_channel_id": null` unbinds the channel."""
    inbox = service.get_inbox(session=session, tenant_id=principal.require_tenant(), inbox_id=inbox_id, lock=True)
    check_if_match(request, InboxPublic.model_validate(inbox))
    sent = body.model_dump(include=body.model_fields_set)
    for required in ("name", "reply_mode", "send_acknowledgement"):
        if sent.get(required, "") is None:  # these cannot be cleared: null means "leave it"
            sent.pop(required)
    service.update_inbox(session=session, inbox=inbox, changes=service.InboxChanges(**sent),
                         audit=audit_context(request, principal))
    public = InboxPublic.model_validate(inbox)
    set_etag(response, public)
    return public


@router.get("/inboxes/{inbox_id}/imap", response_model=ImapAccountPublic)
def show_imap(inbox_id: uuid.UUID, session: SessionDep, principal: TenantPrincipalDep) -> ImapAccountPublic:
    inbox = service.get_inbox(session=session, tenant_id=principal.require_tenant(), inbox_id=inbox_id)
    account = accounts.account_for_inbox(session=session, inbox_id=inbox.id)
    if account is None:
        raise NotFound("this inbox has no IMAP account")
    return ImapAccountPublic.model_validate(account)


@router.put("/inboxes/{inbox_id}/imap", response_model=ImapAccountPublic)
def set_imap(inbox_id: uuid.UUID, body: ImapAccountSet, request: Request, session: SessionDep,
             principal: TenantPrincipalDep, runtime: RuntimeDep) -> ImapAccountPublic:
    """Create or change the IMAP account polled into this inbox. The password is write-only: stored
    encrypted, never returned; omit it to keep the stored one."""
    inbox = service.get_inbox(session=session, tenant_id=principal.require_tenant(), inbox_id=inbox_id, lock=True)
    spec = accounts.AccountSpec(host=body.host.strip(), port=body.port or accounts.DEFAULT_PORTS[body.tls],
                                tls=body.tls, username=body.username, folder=body.folder,
                                after_action=body.after_action, move_to=body.move_to)
    encrypted = (SecretBox.from_settings(runtime.settings).encrypt(body.password.get_secret_value())
                 if body.password is not None else None)
    account, created = accounts.upsert_account(session=session, inbox=inbox, spec=spec, password_encrypted=encrypted)
    audit_log.record(session=session, tenant_id=inbox.tenant_id, audit=audit_context(request, principal),
                     action="inbox.imap_created" if created else "inbox.imap_updated", target=f"inbox:{inbox.id}",
                     data={"host": spec.host, "username": spec.username, "password_changed": encrypted is not None})
    return ImapAccountPublic.model_validate(account)


@router.delete("/inboxes/{inbox_id}/imap", response_model=ImapAccountPublic)
def disable_imap(inbox_id: uuid.UUID, request: Request, session: SessionDep,
                 principal: TenantPrincipalDep) -> ImapAccountPublic:
    """Stop polling (the account and its checkpoint stay; PUT enables it again)."""
    inbox = service.get_inbox(session=session, tenant_id=principal.require_tenant(), inbox_id=inbox_id)
    account = accounts.disable_account(session=session, inbox_id=inbox.id)
    audit_log.record(session=session, tenant_id=inbox.tenant_id, audit=audit_context(request, principal),
                     action="inbox.imap_disabled", target=f"inbox:{inbox.id}")
    return ImapAccountPublic.model_validate(account)
