"""THREADLINE_DNS_SERVERS: parsing, and the real resolver asking the server it names over the
wire (tests/support/fake_dns.py), within the DNS budget. No database."""

from __future__ import annotations

import base64
import ipaddress
import socket
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigurationError
from inbound.email.analyse import Envelope, analyse_email
from inbound.email.auth_dns import DnsBudget, DnsPythonResolver, DnsTempError, parse_nameservers
from inbound.email.authenticity import DkimResult, DmarcResult
from tests.support.fake_dns import FakeDns, fake_dns


@pytest.mark.parametrize(
    ("text", "servers"),
    [
        ("", ()),
        (" , ", ()),
        ("127.0.0.1", (("127.0.0.1", 53),)),
        ("127.0.0.1:5353, 10.0.0.2", (("127.0.0.1", 5353), ("10.0.0.2", 53))),
        ("::1", (("::1", 53),)),
        ("[2001:db8::1]:5300", (("2001:db8::1", 5300),)),
    ],
)
def test_servers_are_addresses_with_an_optional_port(text: str, servers: tuple[tuple[str, int], ...]) -> None:
    assert parse_nameservers(text) == servers


@pytest.mark.parametrize("bad", ["dns.example.com", "1.2.3.4:0", "1.2.3.4:65536", "1.2.3.4:x", "[::1", "[::1]x"])
def test_a_bad_server_is_a_configuration_error_naming_it(bad: str) -> None:
    with pytest.raises(ConfigurationError, match="THREADLINE_DNS_SERVERS"):
        parse_nameservers(f"127.0.0.1, {bad}")


@given(st.lists(st.tuples(st.ip_addresses(), st.integers(1, 65535)), max_size=4))
def test_written_servers_read_back(servers: list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]]) -> None:
    text = ",".join(f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}" for ip, port in servers)
    assert parse_nameservers(text) == tuple((str(ip), port) for ip, port in servers)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeDns]:
    with fake_dns({"_dmarc.acme.test": ["v=DMARC1; p=reject"], "big.acme.test": ["x" * 700, "y" * 700]}) as dns:
        yield dns


def test_the_resolver_asks_the_configured_server_and_port(server: FakeDns) -> None:
    resolver = DnsPythonResolver(nameservers=parse_nameservers(server.address))
    assert resolver.txt("_dmarc.acme.test", timeout=2) == ["v=DMARC1; p=reject"]
    assert resolver.txt("nothing.acme.test", timeout=2) == []  # NXDOMAIN
    assert resolver.a("_dmarc.acme.test", timeout=2) == []  # the name exists, no such record
    assert ("udp", "TXT", "_dmarc.acme.test") in server.queries


def test_an_answer_too_big_for_udp_is_fetched_over_tcp(server: FakeDns) -> None:
    resolver = DnsPythonResolver(nameservers=parse_nameservers(server.address))
    assert sorted(resolver.txt("big.acme.test", timeout=2)) == ["x" * 700, "y" * 700]
    assert [q[0] for q in server.queries if q[2] == "big.acme.test"] == ["udp", "tcp"]


def test_a_silent_server_costs_the_budget_not_more() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes queries, never answers
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        budget = DnsBudget(DnsPythonResolver(nameservers=[("127.0.0.1", port)]), seconds=0.3)
        start = time.monotonic()
        with pytest.raises(DnsTempError):
            budget.txt("_dmarc.acme.test")
        with pytest.raises(DnsTempError, match="ran out"):
            budget.txt("_dmarc.acme.test")
        assert time.monotonic() - start < 1.5


def test_analyse_email_checks_dkim_and_dmarc_against_the_servers_in_the_envelope() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "ann@acme.test", "help@acme.test", "Hi", "<a@acme.test>"
    msg.set_content("Please restart the backup.")
    raw = msg.as_bytes(policy=policy.SMTP)
    signed = dkim.sign(raw, b"s1", b"acme.test", pem) + raw
    zone = {"s1._domainkey.acme.test": [f"v=DKIM1; k=rsa; p={public}"], "_dmarc.acme.test": ["v=DMARC1; p=reject"]}
    with fake_dns(zone) as dns:
        auth = analyse_email(signed, Envelope(dns_servers=dns.address)).auth
        assert (auth.dkim, auth.dmarc, auth.dmarc_policy) == (DkimResult.PASS, DmarcResult.PASS, "reject")
        altered = analyse_email(signed.replace(b"restart", b"delete"), Envelope(dns_servers=dns.address)).auth
        assert (altered.dkim, altered.dmarc) == (DkimResult.FAIL, DmarcResult.FAIL)
