"""THREADLINE_DNS_SERVERS: a malformed value stops startup with a message naming it, and
`threadline doctor` asks each configured server once (tests/support/fake_dns.py answers; a closed
port does not)."""

from __future__ import annotations

import socket
import string
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.nameservers import display, parse_nameservers, probe
from core.runtime import Runtime
from core.settings import Settings
from tests.support.cli import run_cli
from tests.support.fake_dns import FakeDns, fake_dns
from tests.support.servers import RedisForTests, free_port


def _closed_udp_port() -> int:
    """A UDP port nobody listens on (bound, read, released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the settings model -------------------------------------------------------------------------

_ipv4 = st.ip_addresses(v=4).map(str)
_ipv6 = st.ip_addresses(v=6).map(str)
_valid = st.one_of(_ipv4, _ipv6, st.tuples(_ipv4, st.integers(1, 65535)).map(lambda t: f"{t[0]}:{t[1]}"),
                   st.tuples(_ipv6, st.integers(1, 65535)).map(lambda t: f"[{t[0]}]:{t[1]}"))
_bad_port = st.one_of(st.integers(max_value=0), st.integers(min_value=65536),
                      st.text(string.ascii_letters + "-+ ²", min_size=1, max_size=6).map(str.strip).filter(bool))
_bad = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,15}\.[a-z]{2,8}", fullmatch=True),  # a host name, not an address
    st.tuples(st.integers(256, 999), _ipv4).map(lambda t: f"{t[0]}.{t[1].split('.', 1)[1]}"),  # octet > 255
    st.tuples(_ipv4, _bad_port).map(lambda t: f"{t[0]}:{t[1]}"),
    st.tuples(_ipv6, _bad_port).map(lambda t: f"[{t[0]}]:{t[1]}"),
    _ipv6.map(lambda ip: f"[{ip}"),  # unclosed bracket
    st.tuples(_ipv6, st.integers(1, 65535)).map(lambda t: f"[{t[0]}]x{t[1]}"),
)


@given(before=st.lists(_valid, max_size=2), bad=_bad, after=st.lists(_valid, max_size=2))
def test_a_malformed_dns_server_is_refused_by_the_settings_naming_it(before: list[str], bad: str,
                                                                      after: list[str]) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(THREADLINE_DNS_SERVERS=", ".join([*before, bad, *after]))
    (error,) = refused.value.errors()
    assert error["loc"] == ("THREADLINE_DNS_SERVERS",) and repr(bad) in error["msg"]


@given(st.lists(_valid, max_size=4))
def test_well_formed_dns_servers_are_accepted_as_written(servers: list[str]) -> None:
    assert Settings(THREADLINE_DNS_SERVERS=",".join(servers)).dns_servers == ",".join(servers)


def test_a_command_stops_at_startup_on_a_malformed_dns_server(tmp_path: Path) -> None:
    ran = run_cli("tickets", "list", env={"THREADLINE_DATA_DIR": str(tmp_path),
                                       "THREADLINE_DNS_SERVERS": "127.0.0.1:5353,dns.example.com"})
    assert ran.returncode == 2
    assert "setting THREADLINE_DNS_SERVERS" in ran.stderr and "'dns.example.com' is not an IP address" in ran.stderr


# -- the probe and doctor ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dns_server() -> Iterator[FakeDns]:
    with fake_dns() as server:
        yield server


def test_the_probe_counts_a_reply_from_a_dns_server_and_not_a_closed_port(dns_server: FakeDns) -> None:
    started = time.monotonic()
    answered = probe((dns_server.host, dns_server.port), timeout=1.0)
    closed = probe(("127.0.0.1", _closed_udp_port()), timeout=1.0)
    assert (answered.answered, answered.detail) == (True, "")
    assert closed.answered is False and "connection refused" in closed.detail
    assert ("udp", "NS", ".") in dns_server.queries  # the root's NS: one real query reached it
    assert time.monotonic() - started < 1.0  # a refused port is reported at once, not at the timeout


def test_the_probe_reports_a_server_that_never_replies() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, so no ICMP refusal: it just reads
        silent.bind(("127.0.0.1", 0))
        result = probe(("127.0.0.1", silent.getsockname()[1]), timeout=0.2)
    assert (result.answered, result.detail) == (False, "no reply within 0.2 s")


def test_doctor_says_which_dns_server_answers_and_which_does_not(
    runtime: Runtime, redis_server: RedisForTests, tmp_path: Path, dns_server: FakeDns
) -> None:
    closed = _closed_udp_port()
    ran = run_cli("doctor", env={
        "DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url, "THREADLINE_DATA_DIR": str(tmp_path),
        "THREADLINE_API_PORT": str(free_port()), "THREADLINE_SMTP_PORT": str(free_port()),
        "THREADLINE_DNS_SERVERS": f"{dns_server.address}, 127.0.0.1:{closed}"})
    lines = [line.strip() for line in ran.stdout.splitlines()
             if line.strip().startswith(("ok    DNS server ", "FAIL  DNS server "))]
    assert lines == [
        f"ok    DNS server {dns_server.address} answers (THREADLINE_DNS_SERVERS)",
        f"FAIL  DNS server 127.0.0.1:{closed} does not answer: connection refused: nothing listens on that port "
        "(THREADLINE_DNS_SERVERS; SPF/DKIM/DMARC checks of inbound mail will fail)",
    ], ran.stdout
    assert ran.returncode == 1


def test_doctor_notes_the_system_resolver_when_no_dns_server_is_set(
    runtime: Runtime, redis_server: RedisForTests, tmp_path: Path
) -> None:
    ran = run_cli("doctor", env={
        "DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url, "THREADLINE_DATA_DIR": str(tmp_path),
        "THREADLINE_API_PORT": str(free_port()), "THREADLINE_SMTP_PORT": str(free_port()),
        "THREADLINE_DNS_SERVERS": None})
    assert "note  THREADLINE_DNS_SERVERS is unset: mail authentication asks the system's resolver" in ran.stdout
    assert " DNS server " not in ran.stdout


@given(st.lists(st.tuples(st.ip_addresses().map(str), st.integers(1, 65535)), max_size=4))
def test_doctor_shows_each_server_in_the_form_the_setting_accepts(servers: list[tuple[str, int]]) -> None:
    assert parse_nameservers(",".join(display(s) for s in servers)) == tuple(servers)
