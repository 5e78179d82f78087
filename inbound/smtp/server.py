"""`threadline smtp`: run the SMTP server until stopped."""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading

from core.runtime import Runtime
from inbound.smtp.directory import InboxDirectory
from inbound.smtp.handler import LimitedSMTP, ThreadlineHandler
from inbound.smtp.limits import ClientLimits

log = logging.getLogger(__name__)


def _tls(runtime: Runtime) -> ssl.SSLContext | None:
    s = runtime.settings
    if not (s.smtp_tls_cert and s.smtp_tls_key):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(s.smtp_tls_cert), str(s.smtp_tls_key))
    return ctx


async def _serve(runtime: Runtime, stop: threading.Event, ready: threading.Event | None) -> None:
    s = runtime.settings
    handler = ThreadlineHandler(
        runtime.factory,
        InboxDirectory(runtime.factory),
        ClientLimits(s.smtp_max_connections_per_ip, s.smtp_messages_per_minute),
    )
    tls = _tls(runtime)
    loop = asyncio.get_running_loop()

    def protocol() -> LimitedSMTP:
        return LimitedSMTP(
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
    log.info("smtp listening", extra={"host": s.smtp_host, "port": s.smtp_port, "starttls": tls is not None})
    if ready is not None:
        ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.2)
    server.close()
    await server.wait_closed()


def serve_smtp(runtime: Runtime, *, stop: threading.Event, ready: threading.Event | None = None) -> None:
    asyncio.run(_serve(runtime, stop, ready))
