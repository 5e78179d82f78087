"""Our SMTP server, spoken to with smtplib: nothing accepted is lost, nothing twice."""

from __future__ import annotations

import json
import logging
import smtplib
import socket
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.session import system_scope
from core.runtime import Runtime
from core.tickets.models import Message, RawInboundStatus, Ticket
from tests.conftest import make_tenant
from tests.support.cli import run_cli
from tests.support.jobs import drain_jobs
from tests.support.servers import RedisForTests
from tests.support.threadline_smtp import RunningSmtp, make_mail, running_smtp, stored_raws


def _tickets(rt: Runtime) -> list[Ticket]:
    with system_scope(rt.factory) as session:
        return list(session.execute(select(Ticket).order_by(Ticket.number)).scalars())


@pytest.fixture()
def smtp(runtime: Runtime):  # type: ignore[no-untyped-def]
    make_tenant(runtime, address="help@acme.test")
    with running_smtp(runtime) as server:
        yield server


def _send(server: RunningSmtp, raw: bytes, *, rcpts: list[str] | None = None,
          sender: str = "bob@customer.test") -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        return client.sendmail(sender, rcpts or ["help@acme.test"], raw)


def test_accepted_mail_is_stored_byte_for_byte_and_becomes_a_ticket(runtime: Runtime, smtp: RunningSmtp) -> None:
    raw = make_mail()
    assert _send(smtp, raw) == {}
    (stored,) = stored_raws(runtime)
    assert (stored.payload, stored.source, stored.envelope["mail_from"]) == (raw, "smtp", "bob@customer.test")
    drain_jobs(runtime)
    (ticket,) = _tickets(runtime)
    assert ticket.subject == "My backup fails"


def test_unknown_recipient_is_refused_with_550_5_1_1(runtime: Runtime, smtp: RunningSmtp) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        _send(smtp, make_mail(), rcpts=["nobody@acme.test"])
    code, text = err.value.recipients["nobody@acme.test"]
    assert (code, text.startswith(b"5.1.1")) == (550, True)
    assert stored_raws(runtime) == []


def test_size_is_advertised_and_oversized_mail_gets_552(runtime: Runtime, smtp: RunningSmtp) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.ehlo()
        advertised = int(client.esmtp_features["size"])
        big = make_mail(body="x" * (advertised + 10))
        with pytest.raises(smtplib.SMTPException) as err:
            client.sendmail("bob@customer.test", ["help@acme.test"], big)
    assert "552" in str(err.value)
    assert stored_raws(runtime) == []


def test_the_same_mail_delivered_three_times_is_one_message(runtime: Runtime, smtp: RunningSmtp) -> None:
    raw = make_mail()
    for _ in range(3):
        _send(smtp, raw)
    drain_jobs(runtime)
    with system_scope(runtime.factory) as session:
        assert session.execute(select(Message)).scalars().all().__len__() == 1
    assert len(stored_raws(runtime)) == 1


def test_a_relayed_copy_with_other_trace_headers_is_still_one_message(runtime: Runtime, smtp: RunningSmtp) -> None:
    raw = make_mail()
    _send(smtp, raw)
    _send(smtp, b"Received: from relay2.customer.test by mx; Mon, 23 Nov 2026 10:00:00 +0000\r\n" + raw)
    drain_jobs(runtime)
    raws = stored_raws(runtime)
    assert sorted(r.status for r in raws) == [RawInboundStatus.IGNORED, RawInboundStatus.PROCESSED]
    assert "duplicate of mail received at" in next(r.outcome for r in raws if r.status is RawInboundStatus.IGNORED)


def test_two_inboxes_in_one_transaction_each_get_themake_mail(runtime: Runtime, smtp: RunningSmtp) -> None:
    make_tenant(runtime, address="sales@other.test")
    _send(smtp, make_mail(), rcpts=["help@acme.test", "sales@other.test"])
    assert sorted(r.envelope["rcpt_tos"][0] for r in stored_raws(runtime)) == ["help@acme.test", "sales@other.test"]
    drain_jobs(runtime)
    assert len(_tickets(runtime)) == 2


def test_plus_addressed_recipient_routes_to_the_inbox(runtime: Runtime, smtp: RunningSmtp) -> None:
    assert _send(smtp, make_mail(), rcpts=["Help+sometoken123@ACME.test"]) == {}
    assert len(stored_raws(runtime)) == 1


def test_smtputf8_addresses_are_accepted(runtime: Runtime, smtp: RunningSmtp) -> None:
    raw = make_mail(sender="jörg@bücher.test", subject="Grüße")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("smtputf8")
        client.sendmail("jörg@bücher.test", ["help@acme.test"], raw, mail_options=["SMTPUTF8"])
    drain_jobs(runtime)
    assert [t.subject for t in _tickets(runtime)] == ["Grüße"]


def test_malformed_mime_is_accepted_stored_and_flagged_not_lost(runtime: Runtime, smtp: RunningSmtp) -> None:
    raw = (b"From: bob@customer.test\r\nTo: help@acme.test\r\nSubject: broken\r\n"
           b"Content-Type: multipart/mixed; boundary=\"nope\"\r\n\r\n--nope\r\nContent-Type: text/plain; "
           b"charset=x-unknown-9\r\n\r\nhello \xff\xfe world\r\n")
    _send(smtp, raw)
    drain_jobs(runtime)
    (stored,) = stored_raws(runtime)
    with system_scope(runtime.factory) as session:
        (message,) = session.execute(select(Message)).scalars().all()
    assert stored.status is RawInboundStatus.PROCESSED
    assert "defects" in message.flags
    assert "hello" in message.body_text


def test_too_many_connections_from_one_client_get_421(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    runtime.settings.smtp_trusted_networks = ""
    runtime.settings.smtp_max_connections_per_ip = 2
    with running_smtp(runtime) as server:
        held = [socket.create_connection((server.host, server.port)) for _ in range(2)]
        try:
            for s in held:
                assert s.recv(100).startswith(b"220")
            with socket.create_connection((server.host, server.port)) as extra:
                assert extra.recv(100).startswith(b"421 4.7.0")
        finally:
            for s in held:
                s.close()


def test_a_flooding_client_gets_450_and_may_retry(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    runtime.settings.smtp_trusted_networks = ""  # loopback would be exempt as a trusted relay
    runtime.settings.smtp_messages_per_minute = 3
    codes = []
    with running_smtp(runtime) as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        for i in range(5):
            try:
                client.sendmail("bob@customer.test", ["help@acme.test"], make_mail(message_id=f"<f{i}@c.test>"))
                codes.append(250)
            except smtplib.SMTPSenderRefused as exc:
                codes.append(exc.smtp_code)
                client.rset()
    assert codes == [250, 250, 250, 450, 450]


def test_starttls_is_offered_when_a_certificate_is_configured(runtime: Runtime, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import ssl

    from tests.support.smtp_sink import self_signed_tls_context

    self_signed_tls_context(tmp_path)  # writes relay.crt / relay.key
    runtime.settings.smtp_tls_cert, runtime.settings.smtp_tls_key = tmp_path / "relay.crt", tmp_path / "relay.key"
    make_tenant(runtime, address="help@acme.test")
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE
    with running_smtp(runtime) as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.starttls(context=client_ctx)
        client.ehlo()
        client.sendmail("bob@customer.test", ["help@acme.test"], make_mail())
    assert len(stored_raws(runtime)) == 1


def test_without_a_certificate_starttls_is_not_offered(runtime: Runtime, smtp: RunningSmtp) -> None:
    with smtplib.SMTP(smtp.host, smtp.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("starttls")


def _bare_mail() -> bytes:
    """A hand-typed test mail: no Message-ID, no Date (smtplib adds neither)."""
    return (b"From: bob@customer.test\r\nTo: help@acme.test\r\nSubject: test\r\n\r\n"
            b"does the helpdesk work?\r\n")


def test_a_test_mail_sent_twice_is_one_ticket_and_the_second_is_logged_and_listed(
    runtime: Runtime, smtp: RunningSmtp, redis_server: RedisForTests, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15 item 5: the repeat stays one message, but says so (INFO line, raw listing)."""
    _send(smtp, _bare_mail())
    drain_jobs(runtime)
    with caplog.at_level(logging.INFO, logger="inbound.ingest.accept"):
        assert _send(smtp, _bare_mail()) == {}
    drain_jobs(runtime)
    assert [t.number for t in _tickets(runtime)] == [1]
    (first,) = stored_raws(runtime)
    when = first.received_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [r.getMessage() for r in caplog.records if r.name == "inbound.ingest.accept"]
    assert lines == [f"mail ignored: duplicate of mail received at {when} (ticket #1)"]
    listed = run_cli("raw", "list", "--json", env={
        "DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url, "THREADLINE_DATA_DIR": str(tmp_path)})
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["raw_id"], row["redeliveries"], row["outcome"]) == (str(first.id), 1, "opened ticket #1 (new)")


def test_a_relayed_copy_is_ignored_with_a_reason_naming_the_first_mail_and_ticket(
    runtime: Runtime, smtp: RunningSmtp, caplog: pytest.LogCaptureFixture,
) -> None:
    _send(smtp, _bare_mail())
    drain_jobs(runtime)
    _send(smtp, b"Received: from relay2.customer.test by mx; Mon, 23 Nov 2026 10:00:00 +0000\r\n" + _bare_mail())
    with caplog.at_level(logging.INFO, logger="inbound.ingest.pipeline"):
        drain_jobs(runtime)
    first, second = stored_raws(runtime)
    reason = f"duplicate of mail received at {first.received_at.strftime('%Y-%m-%d %H:%M:%S UTC')} (ticket #1)"
    assert (second.status, second.outcome) == (RawInboundStatus.IGNORED, reason)
    assert f"mail ignored: {reason}" in [r.getMessage() for r in caplog.records]
