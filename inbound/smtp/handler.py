"""The SMTP handler: thin. Validate recipients at RCPT, store the raw bytes durably, answer.

No 250 before the bytes (and the processing job) are committed to Postgres; when the database
is unreachable the answer is 451 4.3.0 and the sending MTA retries (RFC 5321 §4.2.5).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from core.db.session import tenant_scope
from inbound.ingest.accept import content_key, store_raw
from inbound.ingest.addresses import split_recipient
from inbound.smtp.directory import InboxDirectory, Route
from inbound.smtp.limits import ClientLimits

log = logging.getLogger(__name__)

TEMPFAIL = "451 4.3.0 Temporary local problem, please try again later"


class ThreadlineHandler:
    def __init__(self, factory: sessionmaker[DbSession], directory: InboxDirectory, limits: ClientLimits) -> None:
        self._factory = factory
        self._directory = directory
        self.limits = limits

    async def handle_MAIL(  # noqa: N802 - aiosmtpd hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, mail_options: list[str]
    ) -> str:
        ip = _ip(session)
        if not self.limits.allow_message(ip):
            log.warning("smtp rate limit", extra={"peer": ip})
            return "450 4.7.1 Too many messages from your address, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        recipient = split_recipient(address)
        if recipient is None:
            return "553 5.1.3 Malformed recipient address"
        try:
            route = await asyncio.to_thread(self._directory.resolve, recipient.address)
        except Exception as exc:  # database unreachable: never 550 for a maybe-valid address
            log.warning("smtp recipient lookup failed", extra={"error": f"{type(exc).__name__}: {exc}"})
            return TEMPFAIL
        if route is None:
            return f"550 5.1.1 <{recipient.address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        routes: dict[str, Route] = getattr(envelope, "threadline_routes", {})
        routes[address] = route
        envelope.threadline_routes = routes  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        raw = envelope.original_content or b""
        routes: dict[str, Route] = getattr(envelope, "threadline_routes", {})
        by_inbox: dict[Any, tuple[Route, list[str]]] = {}
        for rcpt in envelope.rcpt_tos:
            route = routes[rcpt]
            by_inbox.setdefault(route.inbox_id, (route, []))[1].append(rcpt)
        meta = {
            "mail_from": envelope.mail_from or "",
            "peer": _ip(session),
            "helo": session.host_name or "",
            "received_at": datetime.now(timezone.utc).isoformat(),
        }
        try:
            ids = await asyncio.to_thread(self._store_retrying, raw, by_inbox, meta)
        except Exception as exc:  # nothing was acknowledged; the sender keeps the mail and retries
            log.warning("smtp store failed; answered 451", extra={"error": f"{type(exc).__name__}: {exc}"})
            return TEMPFAIL
        return f"250 2.0.0 OK queued as {ids[0]}"

    def _store_retrying(self, raw: bytes, by_inbox: dict[Any, tuple[Route, list[str]]], meta: dict[str, str]) -> list[str]:
        try:
            return self._store(raw, by_inbox, meta)
        except DBAPIError as exc:
            # A pooled connection died with a database restart; the pool is now reset, so one
            # immediate retry spares the sender a needless 451 round trip.
            if not exc.connection_invalidated:
                raise
            return self._store(raw, by_inbox, meta)

    def _store(self, raw: bytes, by_inbox: dict[Any, tuple[Route, list[str]]], meta: dict[str, str]) -> list[str]:
        # One raw record per inbox; each commit is idempotent, so a 451 after a partial success
        # and the sender's retry still store every copy exactly once.
        ids = []
        for route, rcpts in by_inbox.values():
            with tenant_scope(self._factory, route.tenant_id) as session:
                accepted = store_raw(
                    session=session, tenant_id=route.tenant_id, inbox_id=route.inbox_id, source="smtp",
                    payload=raw, idempotency_key=content_key("smtp", str(route.inbox_id), raw),
                    envelope={**meta, "rcpt_tos": rcpts},
                )
            ids.append(str(accepted.raw_id))
        return ids


def _ip(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) else str(peer)


class LimitedSMTP(SMTP):
    """aiosmtpd's SMTP with a per-client connection cap (421 before the greeting)."""

    def __init__(self, handler: ThreadlineHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limits = handler.limits
        self._counted: str | None = None

    async def _handle_client(self) -> None:
        assert self.session is not None
        ip = _ip(self.session)
        if not self._limits.open(ip):
            log.warning("smtp connection limit", extra={"peer": ip})
            await self.push("421 4.7.0 Too many connections from your address, try again later")
            assert self.transport is not None
            self.transport.close()
            return
        self._counted = ip
        await super()._handle_client()

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted is not None:
            self._limits.close(self._counted)
            self._counted = None
        super().connection_lost(error)
