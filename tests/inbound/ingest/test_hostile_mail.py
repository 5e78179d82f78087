"""Hostile mail through the whole pipeline: every mail ends in a terminal state within the budget,
and the worker goes on with the next one (the budget is a killable process, not a hope)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from core.runtime import Runtime
from core.tickets.models import RawInboundStatus
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail

BUDGET = 4.0
SLACK = 4.0  # process start, database round trips
TERMINAL = {RawInboundStatus.PROCESSED, RawInboundStatus.FAILED, RawInboundStatus.IGNORED,
            RawInboundStatus.QUARANTINED}


@pytest.fixture(autouse=True)
def inbox(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    runtime.settings.mail_budget_seconds = BUDGET


def _head(extra: str = "", ctype: str = "text/plain; charset=utf-8") -> bytes:
    return (f"From: bob@customer.test\r\nTo: help@acme.test\r\nSubject: hostile\r\n{extra}"
            f"MIME-Version: 1.0\r\nContent-Type: {ctype}\r\n\r\n").encode()


def _many_parts(n: int) -> bytes:
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\npart\r\n" for _ in range(n))
    return _head(ctype='multipart/mixed; boundary="b"') + parts + b"--b--\r\n"


HOSTILE = {
    "100 KB line of spaces": _head() + b"hello\r\n" + b" " * 100_000 + b"x\r\nbye\r\n",
    "100 KB line of spaces, HTML only": _head(ctype="text/html") + b"<p>" + b" " * 100_000 + b"x</p>\r\n",
    "1 MB line": _head() + b"a" * 1_000_000 + b"\r\n",
    "begin 644 lines": _head() + b"begin 644 x\r\n" * 20_000,
    "<![x> html": _head(ctype="text/html") + b"<![x>" * 50_000,
    "50,000 MIME parts": _many_parts(50_000),
    "10,000 headers": _head("".join(f"X-H{i}: v\r\n" for i in range(10_000))) + b"body\r\n",
    "deep nesting": _head(ctype='multipart/mixed; boundary="0"') + b"".join(
        f"--{i}\r\nContent-Type: multipart/mixed; boundary=\"{i + 1}\"\r\n\r\n".encode() for i in range(3_000)),
}


def _within_budget(runtime: Runtime, raw: bytes) -> RawInboundStatus:
    started = time.monotonic()
    result = deliver(runtime, raw)
    took = time.monotonic() - started
    assert result.status in TERMINAL, result
    assert took < BUDGET + SLACK, f"{took:.1f} s"
    if result.status is RawInboundStatus.FAILED:
        assert "budget" in result.outcome or "unparseable" in result.outcome or "memory" in result.outcome
    return result.status


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_each_hostile_shape_ends_within_the_budget_and_the_next_mail_goes_through(runtime: Runtime, name: str) -> None:
    _within_budget(runtime, HOSTILE[name])
    assert deliver(runtime, mail()).status is RawInboundStatus.PROCESSED


_LINE = st.one_of(
    st.text(alphabet=" \t", min_size=0, max_size=20_000).map(lambda s: s + "x"),
    st.sampled_from(["> quoted", "-- ", "begin 644 f", "On Mon wrote:", "From: a", "-----Original Message-----",
                     "=?utf-8?b?////?=", "<![x>", "<div>" * 50]),
    st.text(alphabet="-_=*~ >", min_size=0, max_size=5_000),
    st.text(max_size=200),
)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(lines=st.lists(_LINE, min_size=1, max_size=30),
       ctype=st.sampled_from(["text/plain; charset=utf-8", "text/html", "text/plain; charset=x-unknown"]),
       nested=st.integers(min_value=0, max_value=40))
def test_generated_hostile_mail_always_ends_in_a_terminal_state_within_the_budget(
    runtime: Runtime, lines: list[str], ctype: str, nested: int
) -> None:
    body = "\r\n".join(lines).encode("utf-8", "surrogatepass")
    if nested:
        opening = b"".join(f"--n{i}\r\nContent-Type: multipart/mixed; boundary=\"n{i + 1}\"\r\n\r\n".encode()
                           for i in range(nested))
        raw = _head(ctype='multipart/mixed; boundary="n0"') + opening + f"--n{nested}\r\nContent-Type: {ctype}\r\n\r\n".encode() + body
    else:
        raw = _head(ctype=ctype) + body
    _within_budget(runtime, raw)
