"""A real SMTP server for tests (aiosmtpd on 127.0.0.1) that keeps every mail it accepts.

It can be told to refuse the next N mails with a 4xx (the sender must retry) or a 5xx (the
sender must give up), at RCPT or at DATA, and to require AUTH or offer STARTTLS.
"""

from __future__ import annotations

import ipaddress
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from tests.support.servers import free_port


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes = field(repr=False)
    tls: bool = False  # the session had switched to TLS (STARTTLS) before DATA
    received_at: float = field(default_factory=time.time)  # wall clock, for latency benchmarks

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class _Refusal:
    remaining: int
    reply: str
    stage: str  # "rcpt" or "data"


class SmtpSink:
    def __init__(
        self, *, credentials: tuple[str, str] | None = None, tls_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self._lock = threading.Condition()
        self._mails: list[ReceivedMail] = []
        self._refusal: _Refusal | None = None
        self.logins: list[str] = []
        self._credentials = credentials
        kwargs: dict[str, Any] = {}
        if credentials is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=tls_context is not None)
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=False)
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **kwargs)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def refuse_next(
        self, count: int, *, code: int = 451, text: str = "4.3.0 try again later", stage: str = "data"
    ) -> None:
        """Answer `code text` to the next `count` mails (at RCPT TO or at the end of DATA)."""
        with self._lock:
            self._refusal = _Refusal(count, f"{code} {text}", stage)

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._mails)

    def wait_for(self, count: int, *, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self._mails) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"expected {count} mails, the sink got {len(self._mails)}")
                self._lock.wait(left)
            return list(self._mails)

    # called from the aiosmtpd thread

    def _refuse(self, stage: str) -> str | None:
        with self._lock:
            refusal = self._refusal
            if refusal is None or refusal.stage != stage or refusal.remaining <= 0:
                return None
            refusal.remaining -= 1
            return refusal.reply

    def _record(self, mail: ReceivedMail) -> None:
        with self._lock:
            self._mails.append(mail)
            self._lock.notify_all()

    def _authenticate(self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self._credentials == (data.login.decode(), data.password.decode())
        if ok:
            with self._lock:
                self.logins.append(data.login.decode())
        return AuthResult(success=ok)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        refusal = self._sink._refuse("rcpt")
        if refusal is not None:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:  # noqa: N802
        refusal = self._sink._refuse("data")
        if refusal is not None:
            return refusal
        data = envelope.original_content or b""
        mail = ReceivedMail(str(envelope.mail_from or ""), tuple(envelope.rcpt_tos), data, session.ssl is not None)
        self._sink._record(mail)
        return "250 2.0.0 queued"


def self_signed_tls_context(directory: Path) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1 (STARTTLS tests)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "threadline test relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "relay.crt", directory / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context


@pytest.fixture()
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()
