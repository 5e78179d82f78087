"""Run our SMTP server in a thread on a free port for a test, and small helpers around it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from sqlalchemy import select

from core.db.session import system_scope
from core.runtime import Runtime
from core.tickets.models import RawInbound
from inbound.smtp.server import serve_smtp
from tests.support.servers import free_port


@dataclass
class RunningSmtp:
    host: str
    port: int


@contextmanager
def running_smtp(runtime: Runtime) -> Iterator[RunningSmtp]:
    port = free_port()
    runtime.settings.smtp_port = port
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=serve_smtp, args=(runtime,), kwargs={"stop": stop, "ready": ready}, daemon=True)
    thread.start()
    assert ready.wait(10), "SMTP server did not start"
    try:
        yield RunningSmtp("127.0.0.1", port)
    finally:
        stop.set()
        thread.join(timeout=10)


def make_mail(subject: str = "My backup fails", sender: str = "bob@customer.test", to: str = "help@acme.test",
              body: str = "restic says: repository is locked", message_id: str = "<m1@customer.test>") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = sender, to, subject, message_id
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)  # CRLF, as on the wire


def stored_raws(rt: Runtime) -> list[RawInbound]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(RawInbound).order_by(RawInbound.received_at)).scalars())
