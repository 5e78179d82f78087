"""The SMTP handler: thin. Validate recipients at RCPT, store the raw bytes durably, answer.

No 250 before the bytes (and the processing job) are committed to Postgres; when the database
is unreachable the answer is 451 4.3.0 and the sending MTA retries (RFC 5321 §4.2.5).
Client limits are decided in `limits.py`; here they only become replies, always 4xx.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from core.db.session import tenant_scope
from inbound.ingest.accept import RawIn, content_key, log_accepted, store_raws
from inbound.ingest.addresses import split_recipient
from inbound.smtp.directory import InboxDirectory, Route
from inbound.smtp.group_commit import GroupCommit
from inbound.smtp.limits import ClientLimits, Limit

log = logging.getLogger(__name__)

TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"


ByInbox = dict[Any, tuple[Route, list[str]]]

REPLIES: dict[Limit, str] = {
    # RFC 5321 §4.2.5/§4.5.4.1: a 4xx keeps the mail queued at the sender, which retries later.
    Limit.CONNECTIONS: "421 4.7.0 Too many connections from your address, try again later",
    Limit.MESSAGE_RATE: "450 4.7.1 Too many messages from your address, try again later",
    Limit.MESSAGES_PER_CONNECTION: "450 4.7.1 Too many messages in this connection, please reconnect",
    # RFC 5321 §4.5.3.1.10: the client sends the remaining recipients in a later transaction.
    Limit.RECIPIENTS_PER_MESSAGE: "452 4.5.3 Too many recipients",
    Limit.UNKNOWN_RECIPIENTS: "450 4.7.1 Too many unknown recipients from your address, try again later",
}


class ThreadlineSession(Session):
    """aiosmtpd's per-connection session plus what our limits count per connection."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self.messages = 0


class ThreadlineEnvelope(Envelope):
    """aiosmtpd's per-transaction envelope plus the route each accepted recipient resolved to."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict[str, Route] = {}


@dataclass(frozen=True)
class Pending:
    """One mail whose DATA is complete, waiting for its batch to commit."""

    raw: bytes
    by_inbox: ByInbox
    meta: dict[str, str]


class ThreadlineHandler:
    def __init__(self, factory: sessionmaker[DbSession], directory: InboxDirectory, limits: ClientLimits) -> None:
        self._factory = factory
        self._directory = directory
        self.limits = limits
        self._commits: GroupCommit[Pending, list[str]] = GroupCommit(self._store_batch)

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        ip, state = peer_ip(session), _session(session)
        refused = self.limits.check_message(ip, messages_in_connection=state.messages)
        if refused is not None:
            log.warning("smtp limit", extra={"peer": ip, "limit": str(refused)})
            return REPLIES[refused]
        state.messages += 1
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        ip = peer_ip(session)
        refused = self.limits.check_recipient(ip, recipients_in_message=len(envelope.rcpt_tos))
        if refused is not None:
            log.warning("smtp limit", extra={"peer": ip, "limit": str(refused)})
            return REPLIES[refused]
        recipient = split_recipient(address)
        if recipient is None:
            return "553 5.1.3 Malformed recipient address"
        try:
            route = await asyncio.to_thread(self._directory.resolve, recipient.address)
        except Exception as exc:  # database unreachable: never 550 for a maybe-valid address
            log.warning("smtp recipient lookup failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return TEMPFAIL
        if route is None:
            self.limits.unknown_recipient(ip)
            return f"550 5.1.1 <{recipient.address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        _envelope(envelope).routes[address] = route
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        routes = _envelope(envelope).routes
        by_inbox: ByInbox = {}
        for rcpt in envelope.rcpt_tos:
            route = routes[rcpt]
            by_inbox.setdefault(route.inbox_id, (route, []))[1].append(rcpt)
        meta = {
            "mail_from": envelope.mail_from or "",
            "peer": peer_ip(session),
            "helo": session.host_name or "",
            "received_at": datetime.now(UTC).isoformat(),
        }
        try:
            ids = await self._commits.submit(Pending(raw, by_inbox, meta))
        except Exception as exc:  # nothing was acknowledged; the sender keeps the mail and retries
            log.warning("smtp store failed; answered 451", extra={"error": f"{type(exc).__name__}: {exc}"})
            return TEMPFAIL
        return f"250 2.0.0 OK queued as {ids[0]}"

    def _store_batch(self, items: Sequence[Pending]) -> list[list[str] | BaseException]:
        try:
            return list(self._store_retrying(items))
        except Exception as exc:
            if len(items) == 1:
                return [exc]
        # One mail's failure must not refuse the others that shared its transaction: each alone.
        results: list[list[str] | BaseException] = []
        for item in items:
            try:
                results.extend(self._store_retrying([item]))
            except Exception as exc:
                results.append(exc)
        return results

    def _store_retrying(self, items: Sequence[Pending]) -> list[list[str]]:
        try:
            return self._store(items)
        except DBAPIError as exc:
            # A pooled connection died with a database restart; the pool is now reset, so one
            # immediate retry spares the sender a needless 451 round trip.
            if not exc.connection_invalidated:
                raise
            return self._store(items)

    def _store(self, items: Sequence[Pending]) -> list[list[str]]:
        # One raw record per mail and inbox, one transaction per tenant for the whole batch; each
        # insert is idempotent, so a 451 after a partial success and the sender's retry still
        # store every copy exactly once.
        parts: dict[Any, list[tuple[int, Route, list[str]]]] = {}
        for index, item in enumerate(items):
            for route, rcpts in item.by_inbox.values():
                parts.setdefault(route.tenant_id, []).append((index, route, rcpts))
        ids: list[list[str]] = [[] for _ in items]
        for tenant_id, tenant_parts in parts.items():
            with tenant_scope(self._factory, tenant_id) as session:
                accepted_all = store_raws(session=session, tenant_id=tenant_id, items=[
                    RawIn(route.inbox_id, "smtp", items[index].raw,
                          content_key("smtp", str(route.inbox_id), items[index].raw),
                          {**items[index].meta, "rcpt_tos": rcpts})
                    for index, route, rcpts in tenant_parts
                ])
            stored = [(index, accepted) for (index, _, _), accepted in zip(tenant_parts, accepted_all, strict=True)]
            for index, accepted in stored:  # after the commit
                log_accepted(accepted, source="smtp")
                ids[index].append(str(accepted.raw_id))
        return ids


def peer_ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


def _session(session: Session) -> ThreadlineSession:
    if not isinstance(session, ThreadlineSession):
        raise TypeError("ThreadlineHandler runs under ThreadlineSMTP (inbound/smtp/server.py)")
    return session


def _envelope(envelope: Envelope) -> ThreadlineEnvelope:
    if not isinstance(envelope, ThreadlineEnvelope):
        raise TypeError("ThreadlineHandler runs under ThreadlineSMTP (inbound/smtp/server.py)")
    return envelope
