"""Real mail breaks RFC 5321's 1000-octet line limit; we accept it and store the exact bytes."""

from __future__ import annotations

import socket

import pytest

from core.runtime import Runtime
from tests.conftest import make_tenant
from tests.support.threadline_smtp import RunningSmtp, running_smtp, stored_raws


@pytest.fixture()
def smtp(runtime: Runtime):  # type: ignore[no-untyped-def]
    make_tenant(runtime, address="help@acme.test")
    with running_smtp(runtime) as server:
        yield server


def _converse(server: RunningSmtp, commands: list[bytes]) -> list[bytes]:
    """Send each chunk and return the reply line it draws (the first item is the greeting)."""
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        replies = sock.makefile("rb")
        got = [replies.readline()]
        for chunk in commands:
            sock.sendall(chunk)
            line = replies.readline()
            while line[3:4] == b"-":  # multiline EHLO
                line = replies.readline()
            got.append(line)
        return got


def test_a_5000_character_line_gets_250_and_is_stored_byte_for_byte(runtime: Runtime, smtp: RunningSmtp) -> None:
    """Like an Amazon SES bounce: one 5,000-character header line and one body line starting with a dot."""
    message = (b"From: MAILER-DAEMON@amazonses.com\r\nTo: help@acme.test\r\nSubject: bounce\r\n"
               b"X-Report: " + b"r" * 5000 + b"\r\n\r\n." + b"b" * 5000 + b"\r\nend\r\n")
    wire = message.replace(b"\r\n.", b"\r\n..")  # dot-stuffing, as any client does on the wire
    replies = _converse(smtp, [b"EHLO sender.test\r\n", b"MAIL FROM:<bob@customer.test>\r\n",
                               b"RCPT TO:<help@acme.test>\r\n", b"DATA\r\n", wire + b".\r\n", b"QUIT\r\n"])
    assert [r[:3] for r in replies] == [b"220", b"250", b"250", b"250", b"354", b"250", b"221"]
    (stored,) = stored_raws(runtime)
    assert stored.payload == message


def test_a_long_command_line_is_still_refused(smtp: RunningSmtp) -> None:
    """Command lines keep their limit (RFC 5321 §4.5.3.1.4); only DATA lines may be long."""
    replies = _converse(smtp, [b"EHLO " + b"h" * 5000 + b"\r\n", b"NOOP\r\n"])
    assert [r[:3] for r in replies] == [b"220", b"500", b"250"]
