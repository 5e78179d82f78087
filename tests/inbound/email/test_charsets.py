"""decode_bytes: supersets, fallbacks and recorded guesses; never raises."""

from __future__ import annotations

import pytest

from inbound.email.charsets import decode_bytes


def test_gb2312_label_decodes_gbk_only_characters() -> None:
    """Text labelled gb2312 with a GBK-only ideograph decodes via GB18030 (WHATWG)."""
    data = "镕基".encode("gbk")
    assert decode_bytes(data, "gb2312") == decode_bytes(data, "gb18030")


def test_ks_c_5601_label_is_read_as_cp949() -> None:
    """Outlook's ks_c_5601-1987 label (unknown to Python) decodes Korean."""
    decoded = decode_bytes("안녕하세요".encode("cp949"), "ks_c_5601-1987")
    assert (decoded.text, decoded.defects) == ("안녕하세요", ())


def test_unknown_charset_is_recorded_and_text_still_decoded() -> None:
    """An unknown label falls back to UTF-8 and records unknown-charset:<label>."""
    decoded = decode_bytes("é".encode(), "x-foo")
    assert (decoded.text, decoded.defects) == ("é", ("unknown-charset:x-foo",))


def test_utf8_labelled_us_ascii_is_a_recorded_mismatch() -> None:
    """UTF-8 bytes under a us-ascii label decode as UTF-8 and record the mismatch."""
    decoded = decode_bytes("ü".encode(), "us-ascii")
    assert (decoded.text, decoded.defects) == ("ü", ("charset-mismatch:us-ascii",))


def test_one_bad_byte_keeps_utf8_with_a_replacement() -> None:
    """One broken sequence in long UTF-8 text keeps UTF-8 (no Latin-1 mojibake)."""
    data = ("Привет " * 100).encode() + b"\xd1" + " мир".encode()
    decoded = decode_bytes(data, "utf-8")
    assert (decoded.text.count("\ufffd"), decoded.defects) == (1, ("charset-replaced:utf-8",))


def test_undeclared_8bit_is_guessed_and_recorded() -> None:
    """No label + 8-bit bytes: UTF-8 failing, Windows-1252 is guessed (RFC 2045 §5.2)."""
    decoded = decode_bytes("naïve “quotes”".encode("cp1252"), None)
    assert (decoded.text, decoded.defects) == ("naïve “quotes”", ("undeclared-charset:guessed-cp1252",))


@pytest.mark.parametrize("label", ["idna", "unicode_escape", "rot13", "base64", "undefined", "zlib"])
def test_codecs_that_are_not_charsets_are_refused(label: str) -> None:
    """Python codecs that are no text charset are treated as unknown, never applied."""
    decoded = decode_bytes(b"\\u0041 plain", label)
    assert (decoded.text, decoded.defects[0].startswith("unknown-charset:")) == ("\\u0041 plain", True)


def test_nul_is_removed_and_recorded() -> None:
    """NUL (PostgreSQL text cannot store it) is dropped and recorded."""
    decoded = decode_bytes(b"a\x00b", "utf-8")
    assert (decoded.text, decoded.defects) == ("ab", ("nul-character",))


def test_utf7_that_decodes_to_a_lone_surrogate_is_not_trusted() -> None:
    """UTF-7 naming half a surrogate pair is rejected and the text read as ASCII."""
    decoded = decode_bytes(b"a+2D3-b", "utf-7")
    assert (decoded.text, decoded.defects) == ("a+2D3-b", ("charset-mismatch:utf-7",))


def test_every_byte_sequence_decodes() -> None:
    """All 256 byte values under a bogus label decode without raising."""
    assert len(decode_bytes(bytes(range(256)), "bogus").text) > 0
