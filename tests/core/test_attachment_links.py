"""Signed attachment links (core/attachments/links.py) and how files are served (serving.py): pure."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.attachments import links, serving
from core.attachments.files import size_refusal

KEY = links.LinkKey.derive("test key material for links")
KEYS = {KEY.kid: KEY}
TENANT, ATTACHMENT = uuid.uuid4(), uuid.uuid4()
NOW = 1_800_000_000


def _link(**kw: object) -> str:
    args: dict[str, object] = {"tenant_id": TENANT, "attachment_id": ATTACHMENT, "ttl_seconds": 3600, "now": NOW}
    return links.sign(KEY, **(args | kw))  # type: ignore[arg-type]


def test_a_signed_link_names_its_tenant_attachment_and_expiry() -> None:
    claims = links.verify(KEYS, _link(), now=NOW + 10)
    assert claims == links.LinkClaims(TENANT, ATTACHMENT, NOW + 3600)


def test_an_expired_link_is_refused() -> None:
    with pytest.raises(links.LinkError, match="expired"):
        links.verify(KEYS, _link(ttl_seconds=60), now=NOW + 61)


def test_a_link_signed_with_another_key_is_refused() -> None:
    other = links.LinkKey.derive("another deployment's key")
    with pytest.raises(links.LinkError):
        links.verify(KEYS, links.sign(other, tenant_id=TENANT, attachment_id=ATTACHMENT, ttl_seconds=60, now=NOW),
                     now=NOW)


@pytest.mark.parametrize("field", [1, 2, 3, 4, 5])  # kid, tenant, attachment, expiry, mac
def test_altering_any_field_of_a_link_is_refused(field: int) -> None:
    parts = _link().split(".")
    replacement = {1: "0" * 8, 2: uuid.uuid4().hex, 3: uuid.uuid4().hex, 4: str(NOW + 10**6), 5: "A" * 43}[field]
    parts[field] = replacement
    with pytest.raises(links.LinkError):
        links.verify(KEYS, ".".join(parts), now=NOW)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_tampering_with_a_link_fails(data: st.DataObject) -> None:
    """Replace, insert or delete characters anywhere: never a valid link (and never another claim)."""
    good = _link()
    edit = data.draw(st.sampled_from(["replace", "insert", "delete", "append", "truncate"]))
    at = data.draw(st.integers(0, len(good) - 1))
    char = data.draw(st.characters(codec="utf-8"))
    tampered = {
        "replace": good[:at] + char + good[at + 1:],
        "insert": good[:at] + char + good[at:],
        "delete": good[:at] + good[at + 1:],
        "append": good + char,
        "truncate": good[:at],
    }[edit]
    if tampered == good:
        return
    with pytest.raises(links.LinkError):
        links.verify(KEYS, tampered, now=NOW)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_garbage_is_refused_cleanly(value: str) -> None:
    with pytest.raises(links.LinkError):
        links.verify(KEYS, value, now=NOW)


@pytest.mark.parametrize(("head", "served"), [
    (b"%PDF-1.7\n...", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n....", "image/png"),
    (b"<html><script>alert(1)</script>", "application/octet-stream"),
    (b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'/>", "application/octet-stream"),
    (b"<?xml version='1.0'?><x/>", "application/octet-stream"),
    (b"Hi,\n<html> later in the text", "application/octet-stream"),
    (b"plain words, caf\xc3\xa9", "text/plain; charset=utf-8"),
    (b"\x00\x01\x02binary", "application/octet-stream"),
])
def test_the_served_type_comes_from_the_bytes_and_markup_is_never_inline(head: bytes, served: str) -> None:
    assert serving.sniff(head) == served


@pytest.mark.parametrize(("name", "header"), [
    ("invoice.pdf", "attachment; filename=\"invoice.pdf\"; filename*=UTF-8''invoice.pdf"),
    ("Rëchnung 2024.pdf", "attachment; filename=\"R_chnung 2024.pdf\"; filename*=UTF-8''R%C3%ABchnung%202024.pdf"),
    ("../../etc/passwd", "attachment; filename=\"etcpasswd\"; filename*=UTF-8''etcpasswd"),
    ('a"b;\r\nX-Evil: 1.txt', "attachment; filename=\"a_b_X-Evil: 1.txt\"; filename*=UTF-8''a%22b%3BX-Evil%3A%201.txt"),
    ("", "attachment; filename=\"attachment\"; filename*=UTF-8''attachment"),
])
def test_content_disposition_is_rfc6266_and_safe(name: str, header: str) -> None:
    assert serving.content_disposition(name) == header


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_content_disposition_never_splits_a_header(name: str) -> None:
    header = serving.content_disposition(name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert header.startswith("attachment; filename=\"") and header.count('"') == 2


def test_size_limits_name_the_file_and_the_limit() -> None:
    mb = 1 << 20
    assert size_refusal([("a.pdf", 5 * mb), ("b.pdf", 5 * mb)], per_file=10 * mb, per_reply=20 * mb) is None
    one = size_refusal([("big.iso", 11 * mb)], per_file=10 * mb, per_reply=20 * mb)
    assert one is not None and "big.iso" in one and "11.0 MB" in one and "10.0 MB" in one
    total = size_refusal([("a", 8 * mb), ("b", 8 * mb), ("c", 8 * mb)], per_file=10 * mb, per_reply=20 * mb)
    assert total is not None and "24.0 MB" in total
