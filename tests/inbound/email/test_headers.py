"""Header decoding: RFC 2047 words, raw bytes, single-line values, msg-ids."""

from __future__ import annotations

from inbound.email.headers import angle_addr, decode_header_value, parse_msg_ids


def test_adjacent_encoded_words_join_without_the_space_between() -> None:
    """White space between two encoded words is dropped (RFC 2047 §6.2)."""
    assert decode_header_value("=?utf-8?q?Hello?= =?utf-8?q?_World?=").value == "Hello World"


def test_multibyte_character_split_across_words_is_rejoined() -> None:
    """A UTF-8 character split over two words (forbidden, but sent) decodes whole."""
    raw = "=?utf-8?b?4oI=?= =?utf-8?b?rA==?="  # the euro sign's three bytes, split 2+1
    assert decode_header_value(raw).value == "€"


def test_missing_base64_padding_is_tolerated() -> None:
    """B words without "=" padding still decode."""
    assert decode_header_value("=?utf-8?b?w6k?=").value == "é"


def test_broken_encoded_word_is_kept_literally_and_recorded() -> None:
    """An undecodable word stays as written and leaves a defect."""
    decoded = decode_header_value("=?utf-8?b?%%%?=")
    assert (decoded.value, decoded.defects) == ("=?utf-8?b?%%%?=", ("bad-encoded-word",))


def test_unfolding_and_control_characters() -> None:
    """Folded values unfold; encoded CR and LF and a raw U+2028 become spaces, NUL goes."""
    decoded = decode_header_value("a\r\n b =?utf-8?q?c=0D=0Ad=00e?= \u2028f")
    assert decoded.value == "a b c  de  f"


def test_msg_id_lists() -> None:
    """Ids come back bare, deduplicated, in order; bracket-less ids are accepted."""
    assert parse_msg_ids("<a@x> <b@y>\n\t<a@x>") == ("a@x", "b@y")
    assert parse_msg_ids("c@z (comment)") == ("c@z",)
    assert parse_msg_ids("no id here") == ()


def test_angle_addr_null_and_plain() -> None:
    """Return-Path <> is "", a bracketed address loses its brackets, absent is None."""
    assert (angle_addr("<>"), angle_addr(" <bounce@x.example> "), angle_addr(None)) == ("", "bounce@x.example", None)
