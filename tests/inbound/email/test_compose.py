"""Outgoing mail is built per architecture §7, threads correctly, and no field can inject a header."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from inbound.email import compose
from inbound.email.compose import (
    MAX_REFERENCES,
    OutgoingAttachment,
    OutgoingEmail,
    UnsafeHeader,
    build_message,
    reply_address,
    tagged_subject,
    text_to_html,
    thread_references,
)

BASE = OutgoingEmail(
    from_address="support@acme.test",
    from_name="Acme Support",
    to_address="bob@example.test",
    to_name="Bob Smith",
    subject="Re: [TL-7] Backup fails",
    text="Hello Bob,\n\nPlease try again.\nThanks",
    message_id="0b6f7c7e-1111-4c1e-9f00-000000000001@acme.test",
    in_reply_to="cust-2@mail.example.test",
    references=("cust-1@mail.example.test", "cust-2@mail.example.test"),
    reply_to="support+Tok3n_abcdefghij@acme.test",
    date=datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
)

# The headers a recipient sees; anything else in the output is a smuggled header.
EXPECTED_HEADERS = {
    "from", "to", "reply-to", "subject", "date", "message-id", "in-reply-to", "references",
    "mime-version", "content-type",
}


def _wire(mail: OutgoingEmail) -> bytes:
    return build_message(mail).as_bytes()


def _parse(raw: bytes) -> EmailMessage:
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(msg, EmailMessage)
    return msg


def _top_headers(raw: bytes) -> list[str]:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    return [line.split(":", 1)[0].lower() for line in head.split("\r\n") if line and not line[0].isspace()]


def test_a_reply_carries_the_headers_of_architecture_7() -> None:
    msg = _parse(_wire(BASE))
    assert (msg["From"], msg["To"], msg["Reply-To"]) == (
        "Acme Support <support@acme.test>", "Bob Smith <bob@example.test>",
        "Acme Support <support+Tok3n_abcdefghij@acme.test>",
    )
    assert msg["Message-ID"] == "<0b6f7c7e-1111-4c1e-9f00-000000000001@acme.test>"
    assert msg["In-Reply-To"] == "<cust-2@mail.example.test>"
    assert msg["References"] == "<cust-1@mail.example.test> <cust-2@mail.example.test>"
    assert msg["Subject"] == "Re: [TL-7] Backup fails"
    assert (msg["Auto-Submitted"], msg["X-Auto-Response-Suppress"]) == (None, None)


def test_automatic_mail_says_so_per_rfc_3834() -> None:
    msg = _parse(_wire(replace(BASE, auto_submitted=True)))
    assert (msg["Auto-Submitted"], msg["X-Auto-Response-Suppress"]) == ("auto-replied", "All")


def test_every_line_is_crlf_terminated_and_at_most_78_characters() -> None:
    long_ids = tuple(f"{'x' * 90}.{i}@outlook.example.test" for i in range(5))
    raw = _wire(replace(BASE, references=long_ids, subject="word " * 60))
    lines = raw.split(b"\r\n")
    assert b"\n" not in b"".join(lines) and b"\r" not in b"".join(lines)
    # Ids longer than a line stay whole on their own line; everything else is folded to 78.
    assert all(len(line) <= 78 or b"outlook.example.test>" in line for line in lines)


def test_long_message_ids_are_folded_whole_never_rfc2047_encoded() -> None:
    # The stdlib encodes over-long unstructured words; an encoded id never threads again.
    long_id = f"{'y' * 120}@NAM11.prod.outlook.example.test"
    msg = _parse(_wire(replace(BASE, in_reply_to=long_id, references=("root@a.test", long_id))))
    assert msg["In-Reply-To"] == f"<{long_id}>"
    assert msg["References"].split() == ["<root@a.test>", f"<{long_id}>"]


@pytest.mark.parametrize(
    ("subject", "number", "expected"),
    [
        ("Backup fails", 7, "Re: [TL-7] Backup fails"),
        ("Re: Backup fails", 7, "Re: [TL-7] Backup fails"),
        ("RE: re: Re[2]: Backup fails", 7, "Re: [TL-7] Backup fails"),
        ("Re: [TL-7] Backup fails", 7, "Re: [TL-7] Backup fails"),
        ("Re: [TL-7] Re: Backup fails [tl-7]", 7, "Re: [TL-7] Backup fails"),
        ("AW: SV: Antw: Backup fails", 7, "Re: [TL-7] Backup fails"),
        ("Fwd: Backup fails", 7, "Re: [TL-7] Fwd: Backup fails"),
        ("[TL-3] Other ticket", 7, "Re: [TL-7] [TL-3] Other ticket"),
        ("", 12, "Re: [TL-12] (no subject)"),
        ("  Backup\r\n\tfails  ", 7, "Re: [TL-7] Backup fails"),
        ("Auto: [TL-7] Backup fails", 7, "Re: [TL-7] Backup fails"),
        ("Why is x=? here", 7, "Re: [TL-7] Why is x=? here"),
        ("=?utf-8?q?Gr=C3=BC=C3=9Fe?=", 7, "Re: [TL-7] Grüße"),
    ],
)
def test_subject_gets_one_re_and_one_tag(subject: str, number: int, expected: str) -> None:
    assert tagged_subject(subject, number=number) == expected


def test_acknowledgement_subject_uses_the_auto_prefix() -> None:
    assert tagged_subject("Re: Backup fails", number=7, prefix="Auto") == "Auto: [TL-7] Backup fails"


@pytest.mark.parametrize(
    ("chain", "parent", "ours", "expected"),
    [
        (["a@x", "b@x"], "c@x", ["o1@us"], ("a@x", "b@x", "c@x", "o1@us")),
        (["a@x", "o1@us", "b@x"], "b@x", ["o1@us", "o2@us"], ("a@x", "o1@us", "b@x", "o2@us")),
        (["<a@x>", " b@x "], None, [], ("a@x", "b@x")),
        ([], None, ["o1@us"], ("o1@us",)),
        (["bad id@x", "evil@x>\r\nBcc: v@x", "ok@x", "ü@x", "z" * 300 + "@x"], "p@x", [], ("ok@x", "p@x")),
    ],
)
def test_references_keep_order_drop_duplicates_and_unsafe_ids(
    chain: list[str], parent: str | None, ours: list[str], expected: tuple[str, ...]
) -> None:
    assert thread_references(chain=chain, parent=parent, ours=ours) == expected


def test_a_long_chain_keeps_the_root_and_the_newest_ids() -> None:
    chain = [f"m{i}@x" for i in range(50)]
    refs = thread_references(chain=chain, parent="m50@x", ours=["o1@us"])
    assert len(refs) == MAX_REFERENCES
    assert refs[0] == "m0@x"
    assert refs[-3:] == ("m49@x", "m50@x", "o1@us")


HOSTILE = [
    "x\r\nBcc: victim@evil.test",
    "x\nBcc: victim@evil.test",
    "x\rBcc: victim@evil.test",
    "x\x00\r\n\r\n<html>body</html>",
    "x\u2028Bcc: victim@evil.test",
    "x\x85Bcc: victim@evil.test",
    # Encoded words: the stdlib decodes them on assignment and would write the CRLF raw.
    "=?utf-8?q?x=0D=0ABcc:_victim@evil.test?=",
    "=?utf-8?b?eA0KQmNjOiB2aWN0aW1AZXZpbC50ZXN0?=",
    "=?utf-8?q?=3D=3Futf-8=3Fq=3Fx=3D0D=3D0ABcc:=5Fvictim@evil.test=3F=3D?=",
    "a =?utf-8?q?x?= =?utf-8?q?=0D=0A?= =?utf-8?q?Bcc:_victim@evil.test?=",
]


@pytest.mark.parametrize("hostile", HOSTILE)
@pytest.mark.parametrize("field", ["subject", "from_name", "to_name"])
def test_free_text_fields_cannot_inject_a_header(field: str, hostile: str) -> None:
    raw = _wire(replace(BASE, **{field: hostile}))
    assert set(_top_headers(raw)) == EXPECTED_HEADERS
    msg = _parse(raw)
    assert msg.get_all("To") == [msg["To"]] and len(msg["To"].addresses) == 1
    assert msg["Bcc"] is None


@pytest.mark.parametrize("hostile", [h for h in HOSTILE if h.startswith(("=?utf-8?q?x", "=?utf-8?b", "a =?"))])
def test_the_round_trip_check_refuses_an_injection_the_value_checks_missed(
    hostile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compose, "clean_text", lambda value: value or "")  # the first wall removed
    with pytest.raises(UnsafeHeader):
        build_message(replace(BASE, subject=hostile))


def test_a_display_name_cannot_add_a_recipient() -> None:
    msg = _parse(_wire(replace(BASE, to_name='Bob" <attacker@evil.test>, "Eve')))
    assert [a.addr_spec for a in msg["To"].addresses] == ["bob@example.test"]


@pytest.mark.parametrize(
    "address",
    [
        "bob@example.test\r\nBcc: victim@evil.test",
        "bob@example.test\nBcc: victim@evil.test",
        "bob@example.test\x00",
        "bob@example.test, victim@evil.test",
        "Bob <bob@example.test>",
        "bob@example.test>",
        "bob",
        "@example.test",
        "bob@",
        " ",
        "jörg@example.test",
    ],
)
@pytest.mark.parametrize("field", ["to_address", "from_address", "reply_to"])
def test_unsafe_addresses_are_refused(field: str, address: str) -> None:
    with pytest.raises(UnsafeHeader):
        build_message(replace(BASE, **{field: address}))


def test_refusals_do_not_echo_the_reply_to_token() -> None:
    with pytest.raises(UnsafeHeader) as caught:
        build_message(replace(BASE, reply_to="support+Secr3tToken_xyz@acme.test\r\nX: y"))
    assert "Secr3tToken" not in str(caught.value)


@pytest.mark.parametrize(
    "message_id", ["a@b\r\nBcc: v@x", "no-at-sign", "two@at@signs", "sp ace@x", "<a@b>>", "<<a@b>", ""]
)
def test_our_own_message_id_must_be_clean(message_id: str) -> None:
    with pytest.raises(UnsafeHeader):
        build_message(replace(BASE, message_id=message_id))


@pytest.mark.parametrize("hostile", ["p@x\r\nBcc: v@x", "p@x>\nBcc: v@x", "p q@x"])
def test_a_hostile_in_reply_to_is_dropped(hostile: str) -> None:
    msg = _parse(_wire(replace(BASE, in_reply_to=hostile)))
    assert msg["In-Reply-To"] is None
    assert set(_top_headers(_wire(replace(BASE, in_reply_to=hostile)))) == EXPECTED_HEADERS - {"in-reply-to"}


def test_text_and_html_travel_as_multipart_alternative() -> None:
    msg = _parse(_wire(BASE))
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == BASE.text
    assert "<p>Please try again.<br>\nThanks</p>" in html.get_content().replace("\r\n", "\n")
    assert msg.get_all("MIME-Version") == ["1.0"] and plain["MIME-Version"] is None


def test_a_given_html_body_is_used_as_is() -> None:
    msg = _parse(_wire(replace(BASE, html="<p>Hi <b>Bob</b></p>")))
    html = msg.get_body(("html",))
    assert html is not None and html.get_content().strip() == "<p>Hi <b>Bob</b></p>"


@pytest.mark.parametrize(
    ("text", "expected_body"),
    [
        ("a < b & c", "<p>a &lt; b &amp; c</p>\n"),
        ("one\ntwo\n\n\nthree", "<p>one<br>\ntwo</p>\n<p>three</p>\n"),
        ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>\n"),
        ("crlf\r\nline", "<p>crlf<br>\nline</p>\n"),
    ],
)
def test_html_is_generated_from_text_escaped(text: str, expected_body: str) -> None:
    html = text_to_html(text)
    assert html.split("<body>\n", 1)[1].split("</body>")[0] == expected_body


def test_non_ascii_text_survives_and_the_body_is_7bit() -> None:
    text = "Grüße — 日本語 \U0001f600\n.\nlast line"
    raw = _wire(replace(BASE, text=text, subject="Überweisung fehlgeschlagen", to_name="Jürgen Müller"))
    assert raw.isascii()
    msg = _parse(raw)
    plain = msg.get_body(("plain",))
    assert plain is not None and plain.get_content().replace("\r\n", "\n").rstrip("\n") == text
    assert msg["Subject"] == "Überweisung fehlgeschlagen"
    assert msg["To"].addresses[0].display_name == "Jürgen Müller"


def test_nul_bytes_never_reach_the_body() -> None:
    raw = _wire(replace(BASE, text="a\x00b", html="<p>a\x00b</p>"))
    assert b"\x00" not in raw and b"=00" not in raw


def test_attachments_make_multipart_mixed_with_the_alternative_first() -> None:
    files = (
        OutgoingAttachment(filename="report.pdf", content_type="application/pdf", content=b"%PDF-1.4\x00\xff"),
        OutgoingAttachment(filename="notes.txt", content_type="text/plain", content="Grüße\n".encode()),
    )
    msg = _parse(_wire(replace(BASE, attachments=files)))
    assert msg.get_content_type() == "multipart/mixed"
    parts = list(msg.iter_parts())
    assert parts[0].get_content_type() == "multipart/alternative"
    found = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_attachments()]
    assert found == [(f.filename, f.content_type, f.content) for f in files]


@pytest.mark.parametrize(
    ("filename", "content_type", "expected_name", "expected_type"),
    [
        ('evil"\r\nBcc: v@x.txt', "text/plain", 'evil" Bcc: v@x.txt', "text/plain"),
        ("=?utf-8?q?x=0D=0ABcc:_v@x.txt?=", "text/plain", "x Bcc: v@x.txt", "text/plain"),
        ("../../etc/passwd", "text/plain", "passwd", "text/plain"),
        ("C:\\Users\\bob\\report.pdf", "application/pdf", "report.pdf", "application/pdf"),
        ("Überweisung.pdf", "application/pdf", "Überweisung.pdf", "application/pdf"),
        ("", "image/png", "attachment", "image/png"),
        ("x.bin", "text/plain\r\nBcc: v@x", "x.bin", "application/octet-stream"),
        ("mail.eml", "message/rfc822", "mail.eml", "application/octet-stream"),
        ("x.bin", "multipart/mixed; boundary=x", "x.bin", "application/octet-stream"),
        ("X.PNG", "Image/PNG; name=x", "X.PNG", "image/png"),
    ],
)
def test_attachment_names_and_types_are_made_safe(
    filename: str, content_type: str, expected_name: str, expected_type: str
) -> None:
    files = (OutgoingAttachment(filename=filename, content_type=content_type, content=b"data"),)
    raw = _wire(replace(BASE, attachments=files))
    msg = _parse(raw)
    (part,) = list(msg.iter_attachments())
    assert (part.get_filename(), part.get_content_type()) == (expected_name, expected_type)
    assert set(_top_headers(raw)) == EXPECTED_HEADERS


def test_the_reply_address_is_the_inbox_plus_the_token() -> None:
    assert reply_address("support@acme.test", "Tok3n_-x") == "support+Tok3n_-x@acme.test"


def test_an_inbox_name_equal_to_its_address_is_not_repeated_as_display_name() -> None:
    msg = _parse(_wire(replace(BASE, from_name="support@acme.test")))
    assert msg["From"] == "support@acme.test"
