"""Issue 16 end-to-end with real DKIM: every mail goes through our SMTP server, the agent's
replies are DKIM-signed and checked against a real DNS server (tests/support/fake_dns.py) that
THREADLINE_DNS_SERVERS points at; no relay vouches for anyone here (no trusted authserv-id)."""

from __future__ import annotations

import base64
import smtplib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.utils import getaddresses

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr
from sqlalchemy import select, update

from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Agent
from core.tickets.models import Direction, RawInboundStatus, Ticket, TicketStatus
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import messages, raw_records
from tests.support.fake_dns import FakeDns, fake_dns
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import ReceivedMail, SmtpSink, smtp_sink  # noqa: F401 (fixture)
from tests.support.threadline_smtp import RunningSmtp, running_smtp

pytestmark = pytest.mark.slow

CUSTOMER, AGENT, SUPPORT = "bob@customer.test", "ann@acme.test", "help@acme.test"
CUSTOMER_MID = "<first-mail@customer.test>"
SELECTOR = b"mail2026"


def _key() -> tuple[bytes, str]:
    """A fresh RSA key: (PKCS#1 PEM for dkim.sign, base64 public key for the DNS record)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(der).decode()


@dataclass(frozen=True)
class Keys:
    published: bytes  # its public half is in DNS
    rogue: bytes  # same selector and domain, but not the key in DNS


@pytest.fixture(scope="module")
def keys_and_dns() -> Iterator[tuple[Keys, FakeDns]]:
    published, public = _key()
    rogue, _ = _key()
    zone = {
        f"{SELECTOR.decode()}._domainkey.acme.test": [f"v=DKIM1; k=rsa; p={public}"],
        "_dmarc.acme.test": ["v=DMARC1; p=reject"],
        "acme.test": ["v=spf1 -all"],
    }
    with fake_dns(zone) as server:
        yield Keys(published, rogue), server


@dataclass
class World:
    runtime: Runtime
    sink: SmtpSink
    smtp: RunningSmtp
    dns: FakeDns
    keys: Keys
    token_address: str  # the notification's Reply-To
    notification_mid: str
    notification_text: str

    def send(self, raw: bytes, *, sender: str = AGENT) -> None:
        with smtplib.SMTP(self.smtp.host, self.smtp.port, timeout=10) as client:
            assert client.sendmail(sender, [SUPPORT], raw) == {}
        drain_jobs(self.runtime, include_delayed=True)

    def to_customer(self) -> list[ReceivedMail]:
        return [m for m in self.sink.mails if CUSTOMER in m.rcpt_tos]

    def ticket(self) -> Ticket:
        with system_scope(self.runtime.factory) as session:
            (ticket,) = session.execute(select(Ticket)).scalars()
            return ticket


@pytest.fixture()
def world(runtime: Runtime, smtp_sink: SmtpSink, keys_and_dns: tuple[Keys, FakeDns]) -> Iterator[World]:  # noqa: F811
    keys, dns_server = keys_and_dns
    s = runtime.settings
    s.undo_seconds, s.outbound_smtp_url, s.dns_servers = 0, SecretStr(smtp_sink.url), dns_server.address
    tenant, _ = make_tenant(runtime, address=SUPPORT)
    with system_scope(runtime.factory) as session:
        session.add(Agent(tenant_id=tenant.id, name="Ann", email=AGENT, notify_prefs={"new_tickets": True}))
    with running_smtp(runtime) as smtp:
        first = _mail(CUSTOMER, SUPPORT, "Backup fails", "restic says the repository is locked", mid=CUSTOMER_MID)
        with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
            client.sendmail(CUSTOMER, [SUPPORT], first)
        drain_jobs(runtime)
        (note,) = smtp_sink.wait_for(1)
        assert note.rcpt_tos == (AGENT,)
        message = note.message
        ((_, reply_to),) = getaddresses([str(message["Reply-To"])])
        text = message.get_body(("plain",))
        assert text is not None
        yield World(runtime, smtp_sink, smtp, dns_server, keys, reply_to, str(message["Message-ID"]),
                    text.get_content())


def _mail(sender: str, to: str, subject: str, body: str, *, mid: str | None = None,
          headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg["Message-ID"] = mid or f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2]}>"
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg.as_bytes(policy=policy.SMTP)


def _reply(world: World, text: str, *, sender: str = AGENT, to: str | None = None, threaded: bool = True,
           headers: dict[str, str] | None = None) -> bytes:
    """Ann's mail client answering the notification: her text above the quoted notification."""
    quoted = "\n".join("> " + line for line in world.notification_text.splitlines())
    threading = {"In-Reply-To": world.notification_mid, "References": world.notification_mid} if threaded else {}
    return _mail(sender, to or world.token_address, "Re: Backup fails",
                 f"{text}\n\nOn Tue, 1 Dec 2026 at 03:00, Help <{SUPPORT}> wrote:\n{quoted}\n",
                 headers={**threading, **(headers or {})})


def _signed(raw: bytes, key: bytes, domain: bytes = b"acme.test") -> bytes:
    return dkim.sign(raw, SELECTOR, domain, key, include_headers=[b"from", b"to", b"subject", b"message-id",
                                                                  b"in-reply-to", b"references"]) + raw


def test_a_signed_agent_reply_threads_to_the_customer_once_then_commands_notes_and_auto_replies(
    world: World,
) -> None:
    world.send(_signed(_reply(world, "Please restart the backup."), world.keys.published))
    (sent,) = world.to_customer()
    out = sent.message
    assert str(out["In-Reply-To"]) == CUSTOMER_MID
    assert CUSTOMER_MID in str(out["References"]).split()
    body = out.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "Please restart the backup."
    assert "restic says" not in sent.data.decode("utf-8", "replace")  # the quoted notification stayed behind
    assert ("udp", "TXT", f"{SELECTOR.decode()}._domainkey.acme.test") in world.dns.queries  # DNS really asked

    world.send(_signed(_reply(world, "note: customer is on the old plan"), world.keys.published))
    world.send(_signed(_reply(world, "I am out of the office until Monday.",
                              headers={"Auto-Submitted": "auto-replied"}), world.keys.published))
    assert raw_records(world.runtime)[-1].status is RawInboundStatus.IGNORED
    world.send(_signed(_reply(world, "#resolve"), world.keys.published))
    assert world.ticket().status is TicketStatus.RESOLVED
    assert len(world.to_customer()) == 1
    assert [(m.direction, m.body_text) for m in messages(world.runtime)][1:] == [
        (Direction.OUTBOUND, "Please restart the backup."), (Direction.NOTE, "customer is on the old plan")]


def _forged_key(world: World) -> tuple[bytes, str]:
    return _signed(_reply(world, "Please pay to IBAN XX."), world.keys.rogue), "(DMARC fail)"


def _foreign_domain(world: World) -> tuple[bytes, str]:
    return _reply(world, "Please pay to IBAN XX.", sender="ann@acme-support.test"), "not from the agent's address"


def _no_token(world: World) -> tuple[bytes, str]:
    raw = _signed(_reply(world, "Please pay to IBAN XX.", to=SUPPORT, threaded=False), world.keys.published)
    return raw, f"mail from the agent address {AGENT} without an agent token"


def _altered_after_signing(world: World) -> tuple[bytes, str]:
    raw = _signed(_reply(world, "Please restart the backup."), world.keys.published)
    tampered = raw.replace(b"Please restart the backup.", b"Please pay to IBAN XX.")
    assert tampered != raw
    return tampered, "(DMARC fail)"


def _revoked(world: World) -> tuple[bytes, str]:
    with system_scope(world.runtime.factory) as session:
        session.execute(update(Agent).values(active=False))
    return _signed(_reply(world, "Please restart the backup."), world.keys.published), "revoked"


def test_mails_that_only_claim_to_be_the_agent_are_held_and_reach_no_customer(world: World) -> None:
    # One ticket for all five: a held mail changes nothing, so each case starts from the same state
    # (the revoking one last).
    cases: list[Callable[[World], tuple[bytes, str]]] = [
        _forged_key, _foreign_domain, _no_token, _altered_after_signing, _revoked]
    for case in cases:
        raw, reason = case(world)
        before = len(raw_records(world.runtime))
        world.send(raw)
        assert world.to_customer() == [], case.__name__
        assert [m.direction for m in messages(world.runtime)] == [Direction.INBOUND], case.__name__
        records = raw_records(world.runtime)
        assert len(records) == before + 1, case.__name__
        held = records[-1]
        assert (held.status, held.held) == (RawInboundStatus.QUARANTINED, True), case.__name__
        assert reason in (held.outcome or ""), (case.__name__, held.outcome)
