"""read_data: DATA up to the lone dot, lines of any length, only the total bounded."""

from __future__ import annotations

import asyncio

import pytest

from inbound.smtp.server import read_data

LONG = b"x" * 5000


async def _read(wire: bytes, *, limit: int | None = 1_000_000, reader_limit: int = 1001) -> tuple[bytes | None, bytes]:
    reader = asyncio.StreamReader(limit=reader_limit)
    reader.feed_data(wire)
    reader.feed_eof()
    content = await read_data(reader, limit=limit)
    return content, await reader.read()


@pytest.mark.parametrize(("wire", "content"), [
    (b"Subject: a\r\n\r\nhi\r\n.\r\n", b"Subject: a\r\n\r\nhi\r\n"),
    (b"a\r\n" + LONG + b"\r\nb\r\n.\r\n", b"a\r\n" + LONG + b"\r\nb\r\n"),  # Amazon SES bounce style
    (b"..." + LONG + b"\r\n.\r\n", b".." + LONG + b"\r\n"),  # a stuffed dot on a long line
    (b"x" * 1000 + b"\r" + b"\r\n.\r\n", b"x" * 1000 + b"\r\r\n"),  # CR at a piece boundary
    (b"bare\nlf\n.\nstill data\r\n.\r\n", b"bare\nlf\n.\nstill data\r\n"),  # only CRLF.CRLF ends DATA
    (LONG + b".\r\n.\r\n", LONG + b".\r\n"),  # a dot ending a long line is not the terminator
])
def test_data_is_unstuffed_and_long_lines_are_kept(wire: bytes, content: bytes) -> None:
    """The stored bytes are exactly the sender's message (RFC 5321 §4.5.2), however long its lines."""
    assert asyncio.run(_read(wire)) == (content, b"")


def test_an_oversized_message_is_drained_and_refused() -> None:
    """Over the limit nothing is kept, but the stream is read to the dot so the session goes on."""
    assert asyncio.run(_read(LONG + b"\r\n.\r\nQUIT\r\n", limit=4096)) == (None, b"QUIT\r\n")
