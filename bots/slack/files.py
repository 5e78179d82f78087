"""Files an agent shares in a ticket's Slack thread go to the customer with their reply (issue 10, item 4).

The listener (inside Slack's 3 s ack) only reads the event's file list, refuses files declared over
the limits, and stores the reply undelivered with a `slack.fetch_files` job (bots/surface/actions.py).
This job, with no transaction open, asks `files.info` for each file, downloads it from Slack's file
host with the bot token (`url_private_download`, `Authorization: Bearer xoxb-…`; the token goes to
no other host and no redirect is followed), stores the bytes in the blob store, then in one
transaction attaches them to the reply and schedules its delivery for what is left of the undo
window. A file over the limits, or one Slack will not give us, fails the reply with the reason
(shown in the thread) and an ephemeral note to the agent: a reply never goes out without its files.
Run twice (a redelivered job, a retry), it attaches nothing twice: the reply's `files-attached` flag
and the content-addressed store make the second run a no-op.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bots.slack.client import client_for_tenant
from core.attachments.files import FileTooLarge, SharedFile, StoredFile, attach, size_refusal
from core.blobs import BlobStore
from core.db.session import tenant_scope
from core.errors import TemporaryFailure, UserError
from core.jobs import lease
from core.jobs.outbox import record_events
from core.registry import JobContext
from core.settings import Settings
from core.tickets import replies, service
from core.tickets.models import DeliveryState, Message, SurfaceAnchor

log = logging.getLogger(__name__)

FETCH_JOB = "slack.fetch_files"
ATTACHED_FLAG = "files-attached"
MAX_FILES = 10  # Slack attaches at most 10 files to one message
SLACK_FILE_HOSTS = frozenset({"files.slack.com", "files.slack-gov.com"})
_MIME = re.compile(r"[a-z0-9][a-z0-9.+-]{0,60}/[a-z0-9][a-z0-9.+-]{0,100}")
_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class FileRefusedError(UserError):
    """Slack would not give us the file (deleted, no access, not a file): the reply fails with this."""


def shared_files(event: dict[str, Any]) -> list[SharedFile]:
    """The files on a message event (a `file_share`, or files on a plain reply), as Slack declared them."""
    raw = event.get("files")
    if not isinstance(raw, list):
        return []
    out: list[SharedFile] = []
    for item in raw[:MAX_FILES]:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or item.get("mode") == "tombstone":
            continue
        size = item.get("size")
        out.append(SharedFile(item["id"], str(item.get("name") or item.get("title") or "attachment"),
                              size if isinstance(size, int) and size >= 0 else 0))
    return out


def download_allowed(url: str, settings: Settings) -> bool:
    """Only Slack's file hosts over https (or the host of SLACK_API_URL itself: a test fake) get the token."""
    try:
        parts, api = urlsplit(url), urlsplit(settings.slack_api_url)
    except ValueError:
        return False
    if parts.username or parts.password:
        return False
    if parts.scheme == "https" and (parts.hostname or "").lower() in SLACK_FILE_HOSTS and parts.port in (None, 443):
        return True
    return (parts.scheme, parts.netloc.lower()) == (api.scheme, api.netloc.lower())


def _content_type(declared: object) -> str:
    value = str(declared or "").strip().lower()
    return value if _MIME.fullmatch(value) else "application/octet-stream"


def _download(client: WebClient, settings: Settings, blobs: BlobStore, file_id: str) -> StoredFile:
    try:
        info: dict[str, Any] = client.files_info(file=file_id)["file"]
    except SlackApiError as exc:
        error = exc.response.get("error")
        if error in ("file_not_found", "file_deleted", "access_denied", "not_visible", "missing_scope"):
            raise FileRefusedError(f"Slack would not give us the file {file_id} ({error})") from None
        raise
    name = str(info.get("name") or info.get("title") or "attachment")
    size = info.get("size")
    declared = size if isinstance(size, int) else 0
    refusal = size_refusal([(name, declared)], per_file=settings.attachment_max_file_bytes,
                           per_reply=settings.attachment_max_reply_bytes)
    if refusal:
        raise FileTooLarge(refusal)
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    if not download_allowed(url, settings):
        raise FileRefusedError(f"the file \u201c{name}\u201d is not on Slack's file host, so it was not fetched")
    data = _fetch(url, token=str(client.token), name=name, limit=settings.attachment_max_file_bytes,
                  reply_limit=settings.attachment_max_reply_bytes, declared_type=_content_type(info.get("mimetype")))
    return StoredFile(blobs.put(data), name, _content_type(info.get("mimetype")), len(data))


def _fetch(url: str, *, token: str, name: str, limit: int, reply_limit: int, declared_type: str) -> bytes:
    """The file's bytes, read up to `limit` (a larger file is refused mid-stream, whatever Slack declared)."""
    chunks: list[bytes] = []
    got = 0
    with httpx.Client(timeout=_TIMEOUT, follow_redirects=False) as http, \
            http.stream("GET", url, headers={"Authorization": f"Bearer {token}"}) as resp:
        if resp.status_code in (429, 500, 502, 503, 504):
            raise TemporaryFailure(f"Slack's file host answered {resp.status_code}")
        if resp.status_code != 200:
            raise FileRefusedError(f"Slack's file host answered {resp.status_code} for \u201c{name}\u201d")
        if resp.headers.get("content-type", "").startswith("text/html") and declared_type != "text/html":
            # Without the files:read scope Slack answers with its sign-in page, not the file.
            raise FileRefusedError(f"Slack sent a sign-in page instead of \u201c{name}\u201d: the Slack app needs the "
                              "files:read scope (reinstall it with the current manifest)")
        for chunk in resp.iter_bytes():
            got += len(chunk)
            if got > limit:
                raise FileTooLarge(size_refusal([(name, got)], per_file=limit, per_reply=reply_limit) or "too large")
            chunks.append(chunk)
    return b"".join(chunks)


def fetch_files(ctx: JobContext, payload: dict[str, Any]) -> None:
    """Job "slack.fetch_files": {message_id, channel, ts, user, files: [{id, name, size}]}."""
    message_id = uuid.UUID(payload["message_id"])
    if not _waiting(ctx, message_id):
        return
    ids = [str(f["id"]) for f in payload.get("files", [])][:MAX_FILES]
    client = client_for_tenant(ctx.settings, ctx.session_factory, ctx.tenant_id)
    blobs = BlobStore.from_settings(ctx.settings)
    try:
        lease.checkpoint()
        stored = [_download(client, ctx.settings, blobs, file_id) for file_id in ids]
        refusal = size_refusal([(f.filename, f.size) for f in stored], per_file=ctx.settings.attachment_max_file_bytes,
                               per_reply=ctx.settings.attachment_max_reply_bytes)
        if refusal:
            raise FileTooLarge(refusal)
    except UserError as exc:
        _refuse(ctx, client, payload, message_id, str(exc))
        return
    except (SlackApiError, httpx.HTTPError, TemporaryFailure) as exc:
        if ctx.attempt > ctx.settings.job_max_retries:  # the last attempt: say so rather than wait forever
            _refuse(ctx, client, payload, message_id, f"the files could not be fetched from Slack: {exc}")
            return
        raise TemporaryFailure(f"fetching the shared files failed, will retry: {type(exc).__name__}") from exc
    _attach(ctx, message_id, stored)


def _waiting(ctx: JobContext, message_id: uuid.UUID) -> bool:
    """The reply is still pending and its files are not attached yet."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = session.execute(select(Message).where(Message.tenant_id == ctx.tenant_id,
                                                        Message.id == message_id)).scalar_one_or_none()
        return (message is not None and message.delivery_state is DeliveryState.PENDING
                and ATTACHED_FLAG not in (message.flags or []))


def _attach(ctx: JobContext, message_id: uuid.UUID, stored: Sequence[StoredFile]) -> None:
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        if message.delivery_state is not DeliveryState.PENDING or ATTACHED_FLAG in (message.flags or []):
            return  # undone meanwhile, or another run attached them
        attach(session, message=message, files=stored)
        message.flags = [*(message.flags or []), ATTACHED_FLAG]
        left = ctx.settings.undo_seconds - (datetime.now(UTC) - message.created_at).total_seconds()
        assert ctx.registry is not None
        replies.schedule_delivery(session=session, registry=ctx.registry, message=message, delay_seconds=left)
    log.info("shared files attached to the reply", extra={"message_id": str(message_id), "files": len(stored)})


def _refuse(ctx: JobContext, client: WebClient, payload: dict[str, Any], message_id: uuid.UUID, reason: str) -> None:
    """The reply fails with the reason (the thread shows it); the agent also gets an ephemeral note."""
    with tenant_scope(ctx.session_factory, ctx.tenant_id) as session:
        message = replies.lock_message(session=session, message_id=message_id)
        if message.delivery_state is not DeliveryState.PENDING:
            return
        service.set_delivery_state(session=session, message=message, state=DeliveryState.FAILED,
                                   error=f"not sent: {reason}")
        if ctx.registry is not None:
            record_events(session=session, registry=ctx.registry, events=[replies.delivery_event(message)])
        thread_ts = session.execute(select(SurfaceAnchor.thread_ref).where(
            SurfaceAnchor.tenant_id == ctx.tenant_id, SurfaceAnchor.ticket_id == message.ticket_id,
            SurfaceAnchor.surface == "slack")).scalar_one_or_none()
    log.info("agent's reply with files refused", extra={"message_id": str(message_id), "reason": reason})
    try:
        client.chat_postEphemeral(channel=payload["channel"], user=payload["user"], thread_ts=thread_ts,
                                  text=f":x: Your reply was not sent: {reason}")
    except SlackApiError:
        log.warning("could not tell the agent why their reply was not sent", extra={"message_id": str(message_id)})
