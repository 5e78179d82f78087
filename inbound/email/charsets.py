"""Bytes -> text for mail that lies about its charset. Never raises.

Real mail declares charsets it does not use, names charsets Python does not know, or
declares none at all. Like browsers (the WHATWG Encoding Standard), we read a label as
its common superset, then fall back to UTF-8 and Windows-1252, and record each guess
as a short defect string so a wrong rendering can be traced.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

# Labels read as a superset, as browsers do (WHATWG Encoding Standard §4.2): senders
# label text with the legacy name but their software emits the superset's characters
# (Outlook's "gb2312" mail routinely contains GBK-only ideographs).
_SUPERSETS: dict[str, tuple[str, ...]] = {
    "us-ascii": ("ascii",),
    "ascii": ("ascii",),
    "iso-8859-1": ("cp1252", "latin-1"),
    "latin1": ("cp1252", "latin-1"),
    "latin-1": ("cp1252", "latin-1"),
    "iso_8859-1": ("cp1252", "latin-1"),
    "windows-1252": ("cp1252",),
    "iso-8859-9": ("cp1254",),
    "iso-8859-11": ("cp874",),
    "tis-620": ("cp874",),
    "iso-8859-8-i": ("iso-8859-8",),
    "gb2312": ("gb18030",),
    "gbk": ("gb18030",),
    "x-gbk": ("gb18030",),
    "euc-cn": ("gb18030",),
    "chinese": ("gb18030",),
    "big5": ("big5hkscs", "cp950"),
    "ks_c_5601-1987": ("cp949",),
    "ks_c_5601": ("cp949",),
    "euc-kr": ("cp949",),
    "korean": ("cp949",),
    "shift_jis": ("cp932", "shift_jis_2004"),
    "shift-jis": ("cp932", "shift_jis_2004"),
    "sjis": ("cp932", "shift_jis_2004"),
    "x-sjis": ("cp932", "shift_jis_2004"),
    "windows-31j": ("cp932",),
    "euc-jp": ("euc_jp", "euc_jis_2004"),
    # ISO-2022-JP mail often carries JIS X 0212 or half-width katakana escapes that
    # only the extended variants decode (RFC 1468 is stricter than what is sent).
    "iso-2022-jp": ("iso2022_jp", "iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_2004"),
    "utf-7": ("utf-7",),
    "unicode-1-1-utf-7": ("utf-7",),
    "x-utf-7": ("utf-7",),
    "utf8": ("utf-8",),
    "unicode-1-1-utf-8": ("utf-8",),
}

# Labels that say "I don't know" (RFC 1428 unknown-8bit, Exchange's "x-unknown").
_NO_CHARSET = frozenset({"", "unknown-8bit", "x-unknown", "unknown", "default", "charset", "none"})

# Codecs Python offers that are not charsets a sender may pick: decoding with them
# would turn mail into escape-sequence interpretations or always fail.
_NOT_CHARSETS = frozenset(
    {"idna", "punycode", "raw-unicode-escape", "unicode-escape", "undefined", "charmap", "mbcs", "oem"}
)

# IANA charset names are at most 40 characters; a longer label names nothing (and a
# megabyte one would be normalised by every codecs.lookup).
_MAX_LABEL = 64
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9._:\-]{1,40})""", re.I)


@dataclass(frozen=True, slots=True)
class Decoded:
    """Decoded text, the codec actually used, and what went wrong on the way."""

    text: str
    codec: str
    defects: tuple[str, ...]


def normalise_label(label: str | None) -> str:
    """A charset label as a lower-case token ('"UTF-8" ' -> 'utf-8')."""
    if not label:
        return ""
    return label.strip().strip("\"'").strip().lower()


def resolve(label: str) -> tuple[str, ...] | None:
    """Codecs to try for ``label`` in order, or None when no usable codec exists."""
    if len(label) > _MAX_LABEL:
        return None
    if label in _SUPERSETS:
        return _SUPERSETS[label]
    for candidate in (label, label.removeprefix("x-"), label.removeprefix("cs")):
        try:
            info = codecs.lookup(candidate)
        except (LookupError, ValueError):
            continue
        if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
            return None
        return (info.name,)
    return None


def sniff_html_charset(data: bytes) -> str | None:
    """The charset an HTML body names in its own <meta> (HTML §4.2.5.5 prescan)."""
    match = _META_CHARSET.search(data[:4096])
    return normalise_label(match.group(1).decode("ascii")) if match else None


def decode_bytes(data: bytes, declared: str | None, *, hint: str | None = None) -> Decoded:
    """Decode ``data`` labelled ``declared``; ``hint`` is a second guess (e.g. the
    charset of the message's body when a header carries raw 8-bit bytes).

    Order: the declared charset (as its superset), UTF-8, the hint; then the declared
    charset again with replacement characters if only a few bytes are bad (one broken
    sequence should not turn a whole UTF-8 body into Latin-1 mojibake); then
    Windows-1252, the usual truth behind unlabelled 8-bit Western mail; Latin-1 last.
    """
    label = normalise_label(declared)
    defects: list[str] = []
    declared_codecs: tuple[str, ...] = ()
    unknown = False
    if label and label not in _NO_CHARSET:
        resolved = resolve(label)
        unknown = resolved is None
        if resolved is None:
            defects.append(f"unknown-charset:{label[:40]}")
        else:
            declared_codecs = resolved
    candidates = list(declared_codecs)
    for guess in ("utf-8", hint):
        for codec in (resolve(normalise_label(guess)) if guess else None) or ():
            if codec not in candidates:
                candidates.append(codec)
    for codec in candidates:
        try:
            text = data.decode(codec)
        except (UnicodeError, LookupError):
            continue
        if declared_codecs and codec not in declared_codecs:
            defects.append(f"charset-mismatch:{label[:40]}")
        elif not declared_codecs and not unknown and not data.isascii():
            # RFC 2045 §5.2: no charset means us-ascii, yet 8-bit bytes are present.
            defects.append(f"undeclared-charset:guessed-{codec}")
        return Decoded(*_clean_decoded(text, codec, defects))
    if declared_codecs:
        text = data.decode(declared_codecs[0], errors="replace")
        if text.count("\ufffd") <= max(3, len(data) // 200):
            defects.append(f"charset-replaced:{label[:40]}")
            return Decoded(*_clean_decoded(text, declared_codecs[0], defects))
    if declared_codecs:
        defects.append(f"charset-mismatch:{label[:40]}")
    elif not unknown:
        defects.append("undeclared-charset:guessed-cp1252")
    try:
        return Decoded(*_clean_decoded(data.decode("cp1252"), "cp1252", defects))
    except UnicodeError:
        # Latin-1 maps every byte: the last resort can not fail.
        return Decoded(*_clean_decoded(data.decode("latin-1"), "latin-1", defects))


def _clean_decoded(text: str, codec: str, defects: list[str]) -> tuple[str, str, tuple[str, ...]]:
    # PostgreSQL text rejects NUL, which junk mail does contain.
    if "\x00" in text:
        text = text.replace("\x00", "")
        defects.append("nul-character")
    return text, codec, tuple(defects)
