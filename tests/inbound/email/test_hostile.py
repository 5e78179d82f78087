"""Hostile mail: every parse finishes in bounded, linear time and names the cap it met.

The time guards are about orders of magnitude (a quadratic pattern on these inputs
took minutes, or never finished), not micro-timings.
"""

from __future__ import annotations

import binascii
import gc
import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbound.email.bounce_text import scan_notice
from inbound.email.bounces import detect_bounce
from inbound.email.errors import UnparseableEmail
from inbound.email.headers import decode_header_value
from inbound.email.model import ParsedEmail
from inbound.email.parse import MIME_NOT_PARSED, TOO_COMPLEX_TEXT, parse_email
from inbound.email.quotes import strip_reply
from inbound.email.sanitize import html_to_text, sanitize_html

# The thread method also stops code stuck inside a C regex loop, which a signal cannot.
pytestmark = pytest.mark.timeout(20, method="thread")


def _mail(body: bytes, *, ctype: str = "text/plain; charset=utf-8", extra: bytes = b"") -> bytes:
    return (
        b"From: Bob <bob@customer.test>\nTo: help@acme.test\nSubject: hostile\n"
        + extra
        + (b"MIME-Version: 1.0\nContent-Type: " + ctype.encode() + b"\n\n" + body)
    )


def _multipart(parts: list[bytes], *, boundary: str = "B") -> bytes:
    body = b"".join(f"--{boundary}\n".encode() + part + b"\n" for part in parts) + f"--{boundary}--\n".encode()
    return _mail(body, ctype=f'multipart/mixed; boundary="{boundary}"')


def _attachment(i: int) -> bytes:
    return (
        b"Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="f%d.bin"\n\naGk=' % i
    )


def _nested_multiparts(depth: int) -> bytes:
    head = b"".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n'.encode() for i in range(depth))
    return b"From: a@b.example\nSubject: deep\n" + head + b"Content-Type: text/plain\n\nhi\n"


def _nested_messages(depth: int) -> bytes:
    head = b"Content-Type: message/rfc822\n\nFrom: x@y.example\nSubject: inner\n" * depth
    return b"From: a@b.example\nSubject: deep\n" + head + b"Content-Type: text/plain\n\nhi\n"


# --- long lines in bodies ---------------------------------------------------------------

HOSTILE_LINES = {
    "spaces": " " * 100_000 + "x",
    "tabs and spaces": "\t " * 50_000 + "x",
    "dash space": "- " * 50_000 + "x",
    "dashes": "-" * 100_000 + "x",
    "underscores then spaces": "__" + " " * 100_000 + "x",
    "quote markers": "> " * 50_000 + "x",
    "stars": "* " * 50_000 + "x",
    "label then spaces": "From" + " " * 100_000 + "x",
    "attribution then spaces": "On " + " " * 100_000 + "wrote",
    "dash name": "-Ann" + " a" * 50_000 + "!",
    "mobile": "Sent from my " + "a " * 50_000 + "!",
    "sign-off": "Thanks" + " " * 100_000 + "x",
}


@pytest.mark.parametrize("line", HOSTILE_LINES.values(), ids=HOSTILE_LINES.keys())
def test_regression_100kb_hostile_line_in_plain_text_was_quadratic(line: str) -> None:
    """A plain mail with one 100 KB line of markers or blanks parses with its text kept whole."""
    parsed = parse_email(_mail(b"Hello,\n\n" + line.encode() + b"\n"))
    assert line in parsed.text


def test_100kb_line_of_spaces_in_html_only_mail() -> None:
    """An HTML-only mail with a 100 KB run of spaces renders to its one word."""
    parsed = parse_email(_mail(b"<p>" + b" " * 100_000 + b"x</p>", ctype="text/html; charset=utf-8"))
    assert parsed.text == "x"


def test_1mb_line_is_cut_at_the_text_cap() -> None:
    """A 1 MB line of "a" is kept up to MAX_TEXT_CHARS, and the cut is recorded."""
    parsed = parse_email(_mail(b"a" * 1_048_576))
    assert (len(parsed.text), "text-too-long:1048576>1000000" in parsed.defects) == (1_000_000, True)


def test_regression_unterminated_uuencode_begin_lines_were_quadratic() -> None:
    """20,000 "begin 644 x" lines without an "end" stay text, quickly."""
    parsed = parse_email(_mail(b"begin 644 x\n" * 20_000))
    assert (parsed.attachments, parsed.text.count("begin 644 x")) == ((), 20_000)


def test_5000_uuencoded_attachments_keep_the_first_250() -> None:
    """5,000 uuencoded blocks in one body: 250 attachments kept, the cap recorded."""
    block = b"begin 644 n.txt\n" + binascii.b2a_uu(b"hi") + b"`\nend\n"
    parsed = parse_email(_mail(block * 5000))
    assert (len(parsed.attachments), "too-many-attachments:5000>250" in parsed.defects) == (250, True)


def test_too_many_lines_are_read_for_headers_only() -> None:
    """2,000,000 empty lines would cost the stdlib parser seconds: headers only, recorded."""
    parsed = parse_email(_mail(b"\n" * 2_000_000))
    assert (parsed.subject, parsed.text, "too-many-lines:2000006>1000000" in parsed.defects) == (
        "hostile",
        TOO_COMPLEX_TEXT,
        True,
    )


# --- HTML ---------------------------------------------------------------------------------

HOSTILE_HTML = ["<![x>", "<!-- a>", "<![CDATA[x>", "<!--[if x]>", "<![if x>", "<", "</", "<a b='", "<script>"]
HOSTILE_HTML += ["<style></s>", "<head><script>", "&", "&#", "<div>", "<p>", "<b><i></b></i>", "<title>", "</a b='>"]


@pytest.mark.parametrize("unit", HOSTILE_HTML)
def test_regression_hostile_html_shapes_render_in_linear_time(unit: str) -> None:
    """200 KB of one malformed HTML construct parses (text rendering and sanitiser)."""
    html = (unit * (200_000 // len(unit)) + ">").encode()
    parsed = parse_email(_mail(html, ctype="text/html; charset=utf-8"))
    assert "<script" not in (parsed.html or "")


def test_html_past_the_cap_is_cut_and_recorded() -> None:
    """1 MB of HTML is read up to MAX_HTML_CHARS only, and the cut is recorded."""
    parsed = parse_email(_mail(b"<p>x</p>" * 131_072, ctype="text/html; charset=utf-8"))
    assert "html-too-long:1048576>262144" in parsed.defects


def test_crowded_character_references_are_shown_as_text() -> None:
    """400,000 "&" in one text run (quadratic in html5ever) give escaped text, quickly."""
    cleaned = sanitize_html("<p>" + "&" * 200_000 + "</p>")
    assert cleaned.startswith("<div>&amp;&amp;")


# --- MIME structure -----------------------------------------------------------------------


def test_50000_parts_are_read_for_headers_only() -> None:
    """50,000 MIME parts are counted on the bytes: headers only, the cap recorded."""
    parsed = parse_email(_multipart([b"Content-Type: text/plain\n\nx"] * 50_000))
    assert (parsed.subject, parsed.text, parsed.defects) == (
        "hostile",
        TOO_COMPLEX_TEXT,
        ("too-many-parts:50000>1000", MIME_NOT_PARSED),
    )


def test_deep_multipart_nesting_is_read_for_headers_only() -> None:
    """500 nested multiparts (the stdlib parser is quadratic in depth) are seen on the bytes."""
    parsed = parse_email(_nested_multiparts(500))
    assert (parsed.subject, "mime-too-deep:500>64" in parsed.defects) == ("deep", True)


def test_nested_messages_past_the_stack_are_read_for_headers_only() -> None:
    """5,000 nested message/rfc822 parts exhaust the parser's stack: headers only, recorded."""
    parsed = parse_email(_nested_messages(5000))
    assert (parsed.subject, "mime-too-deep:parser" in parsed.defects) == ("deep", True)


def test_10000_headers_keep_the_first_1000() -> None:
    """10,000 header fields: the first 1,000 are kept and the cap recorded."""
    extra = b"".join(b"X-H%d: v\n" % i for i in range(10_000))
    parsed = parse_email(_mail(b"body\n", extra=extra))
    assert (len(parsed.headers), parsed.text, "too-many-headers:10005>1000" in parsed.defects) == (1000, "body", True)


def test_folded_header_of_a_million_lines_is_cut() -> None:
    """One header folded over 1,000,000 lines is cut at MAX_HEADER_LINES, recorded."""
    extra = b"References: <a@b>\n" + b" <x@y>\n" * 1_000_000
    parsed = parse_email(_mail(b"body\n", extra=extra))
    assert "too-many-header-lines:1000006>20000" in parsed.defects


def test_5000_mime_attachments_exceed_the_part_cap() -> None:
    """5,000 attached files are 5,001 parts: headers only, the part cap recorded."""
    parsed = parse_email(_multipart([b"Content-Type: text/plain\n\nsee files", *map(_attachment, range(5000))]))
    assert "too-many-parts:5001>1000" in parsed.defects


def test_600_attachments_keep_the_first_250() -> None:
    """600 attached files (within the part cap): 250 kept, the cap recorded."""
    parsed = parse_email(_multipart([b"Content-Type: text/plain\n\nsee files", *map(_attachment, range(600))]))
    assert (len(parsed.attachments), parsed.text, "too-many-attachments:600>250" in parsed.defects) == (
        250,
        "see files",
        True,
    )


def test_bounce_detection_skips_a_message_read_for_headers_only() -> None:
    """A 50,000-part "bounce" from MAILER-DAEMON is not parsed again by the bounce detector."""
    raw = _multipart([b"Content-Type: text/plain\n\nx"] * 50_000).replace(
        b"bob@customer.test", b"MAILER-DAEMON@mx.test"
    )
    assert detect_bounce(parse_email(raw), raw) is None


def test_regression_200000_adjacent_encoded_words_were_quadratic() -> None:
    """A subject of 200,000 adjacent encoded words decodes quickly."""
    value = "=?utf-8?q?ab?= " * 200_000
    assert decode_header_value(value).value.startswith("abab")


# --- linear time ---------------------------------------------------------------------------


def _best_times(fn: Callable[[str], object], small: str, large: str) -> tuple[float, float]:
    """Best of seven runs of each, interleaved and with the collector off, so that a burst of
    load from a neighbouring test process (or a collection of its objects) hits both sizes alike."""
    best = [float("inf"), float("inf")]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(7):
            for i, text in enumerate((small, large)):
                started = time.perf_counter()
                fn(text)
                best[i] = min(best[i], time.perf_counter() - started)
    finally:
        if enabled:
            gc.enable()
    return best[0], best[1]


# (function, text around the filler, filler repeated to the size)
LINEAR_CASES: dict[str, tuple[Callable[[str], object], str, str]] = {
    "strip_reply spaces": (strip_reply, "Hello\n\n{}x", " "),
    "strip_reply separator": (strip_reply, "Hello\n\n{}x", "- "),
    "strip_reply delimiter": (strip_reply, "Hello\n\n__{}x", " "),
    "strip_reply label": (strip_reply, "Hello\n\n*{}From: x", " "),
    "strip_reply many lines": (strip_reply, "Hello\n\n{}x", "> x\n\n-----\nFrom: a\n"),
    "scan_notice spaces": (lambda t: scan_notice(t, ignore=frozenset()), "<a@b.example>{}x\n{}Received: x", " "),
    "html_to_text comments": (html_to_text, "<p>{}</p>", "<!-- a>"),
}


@pytest.mark.parametrize("case", LINEAR_CASES.values(), ids=LINEAR_CASES.keys())
def test_heuristics_are_linear_on_hostile_lines(case: tuple[Callable[[str], object], str, str]) -> None:
    """Ten times the hostile line costs well under thirty times the time (quadratic: ~100)."""
    fn, template, filler = case

    def text(size: int) -> str:
        return template.replace("{}", filler * (size // len(filler)))

    small, large = _best_times(fn, text(20_000), text(200_000))
    assert large / max(small, 1e-4) < 30


# --- property: random hostile MIME ------------------------------------------------------------

_CHUNKS = [" ", "\t", "-", "_", "*", "> ", "begin 644 x\n", "end\n", "<![x>", "<!--", "&", "=?utf-8?q?a?="]
_CHUNKS += ["--B\n", "On Mon, Bob wrote:\n", "From: x\n", "\n", "a", "=\n", "\r", "\u00e9"]
_CHARSETS = ["utf-8", "iso-8859-1", "utf-7", "iso-2022-jp", "gb2312", "x-unknown", "", '"', "a" * 200]
_TYPES = ["text/plain", "text/html", "application/octet-stream", "message/rfc822", "message/delivery-status"]
_ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uue"]

_hostile_text = st.lists(
    st.tuples(st.sampled_from(_CHUNKS), st.integers(min_value=1, max_value=20_000)), max_size=6
).map(lambda runs: "".join(chunk * count for chunk, count in runs))


@st.composite
def _leaf(draw: st.DrawFn) -> bytes:
    ctype, charset, cte = (
        draw(st.sampled_from(_TYPES)),
        draw(st.sampled_from(_CHARSETS)),
        draw(st.sampled_from(_ENCODINGS)),
    )
    head = f"Content-Type: {ctype}; charset={charset}\nContent-Transfer-Encoding: {cte}\n"
    if draw(st.booleans()):
        head += f'Content-Disposition: attachment; filename="{draw(_hostile_text)[:300]}"\n'
    return (head + "\n" + draw(_hostile_text)).encode("utf-8", "surrogateescape")


def _container(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        boundary = draw(st.sampled_from(["B", "b1", "----=_x", "B B", ""]))
        parts = draw(children)
        closing = f"--{boundary}--\n" if draw(st.booleans()) else ""  # hostile mail often omits it
        body = b"".join(f"--{boundary}\n".encode() + part + b"\n" for part in parts) + closing.encode()
        return f"Content-Type: multipart/{draw(st.sampled_from(['mixed', 'alternative', 'report']))}; ".encode() + (
            f'boundary="{boundary}"\n\n'.encode() + body
        )

    return build()


_mime = st.recursive(_leaf(), lambda inner: _container(st.lists(inner, max_size=5)), max_leaves=12)
_headers = st.lists(
    st.tuples(
        st.sampled_from(["Subject", "From", "To", "References", "X-H", "Received", "Content-Type"]), _hostile_text
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(headers=_headers, many=st.integers(min_value=0, max_value=1_500), body=_mime, bounce=st.booleans())
@pytest.mark.timeout(300, method="thread")
def test_random_hostile_mime_parses_or_is_unparseable(
    headers: list[tuple[str, str]], many: int, body: bytes, bounce: bool
) -> None:
    """Any mixture of long marker lines, nesting, headers and charsets parses (or is
    UnparseableEmail) within seconds, and bounce detection over it finishes too."""
    sender = "MAILER-DAEMON@mx.test" if bounce else "bob@customer.test"
    head = f"From: {sender}\n" + "".join(f"{name}: {value}\n" for name, value in headers) + "X-N: v\n" * many
    raw = head.encode("utf-8", "surrogateescape") + body
    started = time.perf_counter()
    try:
        parsed: ParsedEmail | None = parse_email(raw)
    except UnparseableEmail:
        parsed = None
    if parsed is not None:
        detect_bounce(parsed, raw)
    assert time.perf_counter() - started < 10
