"""Header decoding: RFC 2047 encoded words, raw 8-bit bytes, msg-id lists.

Every value leaves here as one line of text: a header value that still carried CR or
LF could smuggle a second header into anything that re-emits it (header injection),
so line breaks of every kind are flattened to spaces.
"""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass

from inbound.email.charsets import decode_bytes

# RFC 2047 §2 encoded-word, with the RFC 2231 §5 "*language" suffix allowed.
_ENCODED_WORD = re.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]{0,32})?\?([bBqQ])\?([^?\s]*)\?=")
# RFC 5322 §2.2.3 unfolding: CRLF followed by white space is just white space.
_FOLD = re.compile(r"\r?\n(?=[ \t])")
# Everything str.splitlines() would break on, plus other C0/C1 controls and NUL.
_LINE_BREAKS_AND_CONTROLS = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_SURROGATE_ESCAPED = re.compile("[\udc80-\udcff]")
_MSG_ID = re.compile(r"<([^<>]{1,998})>")
_WS = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class HeaderText:
    """A decoded header value and the problems met while decoding it."""

    value: str
    defects: tuple[str, ...]


def single_line(text: str) -> str:
    """Flatten line breaks and control characters to spaces (tab kept as space)."""
    return _LINE_BREAKS_AND_CONTROLS.sub(" ", text.replace("\t", " "))


def decode_header_value(raw: str, *, hint: str | None = None) -> HeaderText:
    """Decode one raw header value as parsed by the compat32 policy.

    ``raw`` may hold raw 8-bit bytes as surrogate escapes (how the stdlib keeps
    undecodable octets). RFC 6532 allows UTF-8 there; anything else is decoded
    with ``hint`` (the body's charset: mailers that send raw 8-bit headers write
    them in the charset of the body) and recorded.
    """
    defects: list[str] = []
    text = _FOLD.sub("", raw)
    if _SURROGATE_ESCAPED.search(text):
        decoded = decode_bytes(text.encode("utf-8", "surrogateescape"), "utf-8", hint=hint)
        text = decoded.text
        if decoded.defects:
            defects.append(f"raw-8bit-header:{decoded.codec}")
    text, word_defects = _decode_encoded_words(text)
    defects.extend(word_defects)
    return HeaderText(single_line(text), tuple(dict.fromkeys(defects)))


def _decode_encoded_words(text: str) -> tuple[str, list[str]]:
    """Replace encoded words by their text.

    White space between two adjacent encoded words is dropped (RFC 2047 §6.2), and
    adjacent words in the same charset are joined *before* decoding: several mailers
    split one multi-byte character across two words, which RFC 2047 §5 forbids but
    which is common in Japanese and Chinese mail.
    """
    if "=?" not in text:
        return text, []
    defects: list[str] = []
    out: list[str] = []
    # (charset, bytes) runs awaiting decoding; grown in place: joining immutable bytes
    # was quadratic (200,000 adjacent words took 13 s).
    pending: list[tuple[str, bytearray]] = []
    pos = 0
    for match in _ENCODED_WORD.finditer(text):
        between = text[pos : match.start()]
        if between and (not pending or between.strip()):
            _flush(pending, out, defects)
            out.append(between)
        charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
        data = _decode_word_payload(encoding, payload)
        if data is None:
            _flush(pending, out, defects)
            defects.append("bad-encoded-word")
            out.append(match.group(0))
        elif pending and pending[-1][0] == charset.lower():
            pending[-1][1].extend(data)
        else:
            pending.append((charset.lower(), bytearray(data)))
        pos = match.end()
    _flush(pending, out, defects)
    out.append(text[pos:])
    return "".join(out), defects


def _decode_word_payload(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding == "b":
            # Missing padding is common (RFC 2047 §4.1 requires it; mailers forget).
            return binascii.a2b_base64(payload + "=" * (-len(payload) % 4), strict_mode=True)
        return binascii.a2b_qp(payload.encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return None


def _flush(pending: list[tuple[str, bytearray]], out: list[str], defects: list[str]) -> None:
    for charset, data in pending:
        decoded = decode_bytes(bytes(data), charset)
        defects.extend(decoded.defects)
        out.append(decoded.text)
    pending.clear()


def collapse_ws(text: str) -> str:
    """One space for every run of white space, trimmed."""
    return _WS.sub(" ", text).strip()


def parse_msg_ids(value: str | None) -> tuple[str, ...]:
    """Message-IDs in a Message-ID / In-Reply-To / References value, bracket-less.

    RFC 5322 §3.6.4 wants ``<id-left@id-right>``; some clients drop the brackets or
    fold a long id across lines, so bare tokens with an "@" are accepted too and
    white space inside an id is removed. Duplicates are dropped, order kept.
    """
    if not value:
        return ()
    found = [_WS.sub("", m) for m in _MSG_ID.findall(value)]
    if not found:
        found = [token.strip("<>,;\"'()") for token in value.split() if "@" in token]
    return tuple(dict.fromkeys(mid for mid in found if mid))


def angle_addr(value: str | None) -> str | None:
    """The address inside a Return-Path value; "" for the null path ``<>``."""
    if value is None:
        return None
    inner = value.strip()
    match = re.search(r"<([^<>]*)>", inner)
    if match:
        inner = match.group(1)
    return "".join(inner.split())
