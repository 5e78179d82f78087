"""`threadline smtp`: run the SMTP server until stopped.

`ThreadlineSMTP` is aiosmtpd's protocol with two changes: a per-client connection cap (421
before the greeting) and a DATA reader that takes lines of any length.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, Envelope, Session, syntax

from core.runtime import Runtime
from inbound.smtp.directory import InboxDirectory
from inbound.smtp.handler import REPLIES, ThreadlineEnvelope, ThreadlineHandler, ThreadlineSession, peer_ip
from inbound.smtp.limits import ClientLimits, LimitPolicy, parse_networks

log = logging.getLogger(__name__)

TOO_BIG = "552 5.3.4 Message size exceeds fixed maximum message size"


async def read_data(reader: asyncio.StreamReader, *, limit: int | None) -> bytes | None:
    """The message after `354`, up to the lone dot, un-dot-stuffed (RFC 5321 §4.5.2); None when
    it exceeds `limit` bytes (read to the end anyway, so the session can go on: §4.2.5).

    Lines may be of any length. RFC 5321 §4.5.3.1.6 caps them at 1000 octets, but Amazon SES and
    GMX bounces and customers' HTML mails break it, and Postfix and Gmail accept them; aiosmtpd
    answers 500. The reader's own limit stays small (it bounds command lines and its buffer);
    a longer line arrives in pieces and only the message total is bounded.
    """
    data = bytearray()
    size, too_big, line_start = 0, False, True
    while True:
        try:
            piece = await reader.readuntil(b"\r\n")
        except asyncio.LimitOverrunError as overrun:
            piece = await reader.read(overrun.consumed)  # part of a long line; no CRLF in it
        if line_start and piece == b".\r\n":
            return None if too_big else bytes(data)
        size += len(piece)
        if limit and size > limit:
            too_big = True
            data.clear()
        elif not too_big:
            data += piece[1:] if line_start and piece.startswith(b".") else piece
        line_start = piece.endswith(b"\r\n")


class ThreadlineSMTP(SMTP):
    def __init__(self, handler: ThreadlineHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._limits = handler.limits
        self._counted: str | None = None

    def _create_session(self) -> Session:
        return ThreadlineSession(self.loop)

    def _create_envelope(self) -> Envelope:
        return ThreadlineEnvelope()

    async def _handle_client(self) -> None:
        assert self.session is not None
        ip = peer_ip(self.session)
        refused = self._limits.open(ip)
        if refused is not None:
            # RFC 5321 §3.1: a server may answer 421 instead of 220 and close.
            log.warning("smtp limit", extra={"peer": ip, "limit": str(refused)})
            await self.push(REPLIES[refused])
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

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd command name
        """aiosmtpd's DATA with `read_data` in place of its 1001-octet line limit."""
        if await self.check_helo_needed() or await self.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await self.push("503 Error: need RCPT command")
            return
        if arg:
            await self.push("501 Syntax: DATA")
            return
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        try:
            content = await read_data(self._reader, limit=self.data_size_limit)
        except asyncio.CancelledError:  # the connection was reset during DATA
            self._writer.close()
            raise
        if content is None:
            self._set_post_data_state()
            await self.push(TOO_BIG)
            return
        self.envelope.content = self.envelope.original_content = content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push("250 OK" if status is MISSING else status)


def _tls(runtime: Runtime) -> ssl.SSLContext | None:
    s = runtime.settings
    if not (s.smtp_tls_cert and s.smtp_tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(s.smtp_tls_cert), str(s.smtp_tls_key))
    return ctx


async def _serve(runtime: Runtime, stop: threading.Event, ready: threading.Event | None) -> None:
    s = runtime.settings
    policy = LimitPolicy(
        max_connections_per_ip=s.smtp_max_connections_per_ip,
        messages_per_minute=s.smtp_messages_per_minute,
        trusted_networks=parse_networks(s.smtp_trusted_networks),
    )
    handler = ThreadlineHandler(runtime.factory, InboxDirectory(runtime.factory), ClientLimits(policy))
    tls = _tls(runtime)
    loop = asyncio.get_running_loop()

    def protocol() -> ThreadlineSMTP:
        return ThreadlineSMTP(
            handler,
            data_size_limit=s.max_message_bytes,  # advertised as SIZE, 552 beyond it
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=s.smtp_host if s.smtp_host not in ("0.0.0.0", "::") else None,
            tls_context=tls,
            require_starttls=False,
            timeout=300,
            loop=loop,
        )

    server = await loop.create_server(protocol, host=s.smtp_host, port=s.smtp_port)
    log.info("smtp listening", extra={"host": s.smtp_host, "port": s.smtp_port, "starttls": tls is not None,
                                      "trusted_networks": s.smtp_trusted_networks})
    if ready is not None:
        ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.2)
    server.close()
    await server.wait_closed()


def serve_smtp(runtime: Runtime, *, stop: threading.Event, ready: threading.Event | None = None) -> None:
    asyncio.run(_serve(runtime, stop, ready))
