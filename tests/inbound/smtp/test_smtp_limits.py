"""Per-client limits against the real server: relays are trusted, strangers are deferred with 4xx."""

from __future__ import annotations

import smtplib
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.runtime import Runtime
from tests.conftest import make_tenant
from tests.support.threadline_smtp import make_mail, running_smtp, stored_raws


def test_a_burst_of_300_mails_from_a_trusted_relay_is_all_accepted(runtime: Runtime) -> None:
    """Loopback is trusted by default: 300 mails over 30 concurrent connections exceed every per-IP limit."""
    make_tenant(runtime, address="help@acme.test")
    runtime.settings.smtp_max_connections_per_ip = 5

    def client(n: int) -> list[int]:
        codes = []
        with smtplib.SMTP(server.host, server.port, timeout=30) as smtp:
            smtp.ehlo()
            for i in range(10):
                smtp.mail("bounces@relay.test")
                smtp.rcpt("help@acme.test")
                codes.append(smtp.data(make_mail(message_id=f"<burst-{n}-{i}@relay.test>"))[0])
        return codes

    with running_smtp(runtime) as server, ThreadPoolExecutor(max_workers=30) as pool:
        codes = [code for codes in pool.map(client, range(30)) for code in codes]
    assert (codes.count(250), len(stored_raws(runtime))) == (300, 300)


@pytest.fixture()
def untrusted(runtime: Runtime) -> Runtime:
    make_tenant(runtime, address="help@acme.test")
    runtime.settings.smtp_trusted_networks = "192.0.2.0/24"  # a relay elsewhere; loopback is a stranger
    return runtime


def test_an_untrusted_client_over_its_rate_gets_450_and_the_session_stays_usable(untrusted: Runtime) -> None:
    """The refused MAIL is a 450; NOOP still works on the same connection."""
    untrusted.settings.smtp_messages_per_minute = 2
    with running_smtp(untrusted) as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        codes = []
        for i in range(3):
            codes.append(client.mail("bob@customer.test")[0])
            if codes[-1] == 250:
                client.rcpt("help@acme.test")
                client.data(make_mail(message_id=f"<r{i}@c.test>"))
        assert (codes, client.noop()[0]) == ([250, 250, 450], 250)


def test_more_than_100_recipients_get_452(untrusted: Runtime) -> None:
    """RFC 5321 §4.5.3.1.8: 100 recipients are accepted, the 101st is 452 4.5.3."""
    with running_smtp(untrusted) as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        client.mail("bob@customer.test")
        codes = [client.rcpt(f"help+{i}@acme.test")[0] for i in range(100)]
        code, text = client.rcpt("help+101@acme.test")
    assert (set(codes), code, text[:5]) == ({250}, 452, b"4.5.3")


def test_enumerating_unknown_recipients_gets_450_even_for_valid_ones(untrusted: Runtime) -> None:
    """After five 550s a further RCPT, valid or not, is 450 4.7.1: the answers no longer tell them apart."""
    with running_smtp(untrusted) as server, smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.ehlo()
        client.mail("probe@spammer.test")
        codes = [client.rcpt(f"guess{i}@acme.test")[0] for i in range(6)]
        valid = client.rcpt("help@acme.test")
    assert (codes, valid[0], valid[1][:5]) == ([550] * 5 + [450], 450, b"4.7.1")
