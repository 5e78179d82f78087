"""Reply and signature stripping, measured against talon and email_reply_parser.

Reply texts are compared after whitespace normalisation (corpora README).
"""

from __future__ import annotations

import email
import re
import time
from typing import Any

import pytest

from inbound.email.parse import parse_email
from inbound.email.quotes import strip_quotes, strip_reply, strip_signature
from inbound.email.sanitize import html_to_text
from tests.inbound.email import corpora

_TALON = corpora.expected("talon")
_ERP = corpora.expected("email_reply_parser_py")


def _entries(section: str) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in _TALON.get(section, {}).items() if not k.startswith("_")]


def _first_plain_part(raw: bytes) -> str:
    """The decoded first text/plain part, as talon's test harness reads it."""
    for part in email.message_from_bytes(raw).walk():
        if part.get_content_type() == "text/plain":
            data = part.get_payload(decode=True)
            assert isinstance(data, bytes)
            return data.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


# --- talon ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case", corpora.params([(k, (k, v)) for k, v in _entries("standard_replies")], corpus_name="talon")
)
def test_talon_standard_replies(case: tuple[str, Any]) -> None:
    """strip_quotes (talon's extract_from_plain: quotes only, signature kept) gives talon's reply."""
    name, want = case
    root = corpora.require("talon")
    text = _first_plain_part((root / name).read_bytes())
    expected_text = want if isinstance(want, str) else (root / want["expected_file"]).read_text()
    assert corpora.normalise_ws(strip_quotes(text)) == corpora.normalise_ws(expected_text)


def test_talon_standard_replies_without_signature() -> None:
    """strip_reply also drops the signatures talon keeps ("Sent from my iPhone", Sparrow's)."""
    root = corpora.require("talon") / "tests/fixtures/standard_replies"
    replies = {
        name: strip_reply(_first_plain_part((root / name).read_bytes())) for name in ("iphone.eml", "sparrow.eml")
    }
    assert replies == {"iphone.eml": "Hello", "sparrow.eml": "Hello"}


@pytest.mark.parametrize(
    "case", corpora.params([(k, (k, v)) for k, v in _entries("html_replies")], corpus_name="talon")
)
def test_talon_html_replies(case: tuple[str, str]) -> None:
    """HTML replies rendered as text and reply-stripped equal talon's, white space removed."""
    name, want = case
    html = (corpora.require("talon") / name).read_text(encoding="utf-8", errors="replace")
    assert re.sub(r"\s", "", strip_reply(html_to_text(html))) == re.sub(r"\s", "", want)


@pytest.mark.parametrize(
    "case",
    corpora.params(
        [(k, (k, v)) for k, v in _entries("html_misc") if isinstance(v, str)],
        corpus_name="talon",
        xfail={
            "tests/fixtures/reply-separated-by-hr.html": "talon also drops the 'Bob' line above the rule (it cuts "
            "at the enclosing <div>); we keep it as part of the reply"
        },
    ),
)
def test_talon_html_misc(case: tuple[str, str]) -> None:
    """talon's expected HTML fragment and our stripped rendering have the same text."""
    name, want_html = case
    html = (corpora.require("talon") / name).read_text(encoding="utf-8")
    assert re.sub(r"\s", "", strip_reply(html_to_text(html))) == re.sub(r"\s", "", html_to_text(want_html))


def test_talon_reply_quotations_share_block() -> None:
    """The Yahoo "--- On … wrote:" reply keeps its text and none of the quoted header block."""
    raw = (corpora.require("talon") / "tests/fixtures/reply-quotations-share-block.eml").read_bytes()
    reply = parse_email(raw).reply_text
    assert (bool(reply.strip()), "From" in reply) == (True, False)


@pytest.mark.parametrize(
    "name", corpora.params([(n, n) for n in _TALON.get("signatures", {}).get("names", [])], corpus_name="talon")
)
def test_talon_signatures(name: str) -> None:
    """strip_signature with the sender's name removes exactly talon's signature."""
    folder = corpora.require("talon") / "tests/fixtures/signature/emails/stripped"
    body = (folder / f"{name}_body").read_text()
    signature_file = folder / f"{name}_signature"
    signature = signature_file.read_text().strip() if signature_file.exists() else ""
    sender_file = folder / f"{name}_sender"
    sender = sender_file.read_text().strip() if sender_file.exists() else ""
    stripped = body.strip()
    want = stripped[: len(stripped) - len(signature)].strip() if signature else stripped
    assert strip_signature(body, sender=sender or None) == want


# --- email_reply_parser ---------------------------------------------------------------


def _erp_checks(exp: dict[str, Any], text: str, got: str, seconds: float) -> list[tuple[str, bool]]:
    """(label, passed) for what expected.json says about the visible reply.

    Mapping: ``parse_reply``/``reply_stripped`` must equal the reply; ``*_contains``
    and ``*_excludes`` test substrings; fragment 0, when not hidden, must be in the
    reply; a hidden fragment must not start any line of it (a quoted hidden fragment
    only through its anchored ``fragment_regex``, as its ">" marks also appear in
    visible quotes); one fragment and nothing hidden means the text is unchanged.
    Fragment counts and the quoted/signature flags describe email_reply_parser's
    internal fragments and are not modelled.
    """
    norm = corpora.normalise_ws
    checks: list[tuple[str, bool]] = []
    hidden: list[bool] = exp.get("hidden", [])
    quoted: list[bool] = exp.get("quoted", [])
    for key in ("parse_reply", "reply_stripped"):
        if key in exp:
            checks.append((key, norm(got) == norm(exp[key])))
    if "parse_reply_excludes" in exp:
        checks.append(("parse_reply_excludes", exp["parse_reply_excludes"] not in got))
    contains = exp.get("reply_contains", [])
    for snippet in [contains] if isinstance(contains, str) else contains:
        checks.append((f"reply_contains {snippet!r}", norm(snippet) in norm(got)))
    for index, snippet in exp.get("fragment_contains", {}).items():
        i = int(index)
        if hidden and hidden[i] and not (quoted and quoted[i]):
            starts = any(line.lstrip().startswith(snippet) for line in got.splitlines())
            checks.append((f"hidden fragment {i} {snippet!r}", not starts))
        elif i == 0 and not (hidden and hidden[0]):
            checks.append((f"fragment 0 {snippet!r}", snippet in got))
    for index, pattern in exp.get("fragment_regex", {}).items():
        i = int(index)
        if hidden and hidden[i]:
            checks.append((f"hidden fragment {i} /{pattern}/", re.search(pattern, got, re.M) is None))
        elif i == 0:
            checks.append((f"fragment 0 /{pattern}/", re.match(pattern, got) is not None))
    if exp.get("fragments") == 1 and not any(hidden):
        checks.append(("single fragment unchanged", norm(got) == norm(text)))
    if "max_seconds" in exp:
        checks.append(("max_seconds", seconds <= exp["max_seconds"]))
    return checks


@pytest.mark.parametrize(
    "name",
    corpora.params([(k, k) for k in _ERP if not k.startswith("_")], corpus_name="email_reply_parser_py"),
)
def test_email_reply_parser_expectations(name: str) -> None:
    """strip_reply meets every expectation of email_reply_parser that concerns the visible reply."""
    text = (corpora.require("email_reply_parser_py") / "test" / "emails" / name).read_text()
    started = time.perf_counter()
    got = strip_reply(text)
    checks = _erp_checks(_ERP[name], text, got, time.perf_counter() - started)
    if not checks:
        pytest.skip("expected.json gives only fragment counts, which strip_reply does not model")
    assert [label for label, passed in checks if not passed] == []


# --- hand-written cases (named after the quirk) ------------------------------------------


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Here is another email\n\nSent from my BlackBerry", "Here is another email"),
        ("Here is another email\n\nSent from my Verizon Wireless BlackBerry", "Here is another email"),
        ("Here.\n\nSent from my desk, is much easier then my mobile phone.", None),
        ("Thanks!\n\nEnvoyé de mon iPhone", "Thanks!"),
        ("Ok\n\nGet Outlook for Android", "Ok"),
        ("And here is a fix -- this is not a signature.\n\nkthxbai", None),
        ("Hi\n\n-- \nJohn\nACME Corp", "Hi"),
        ("Sure.\n\nAm 02.06.2025 um 10:00 schrieb Support <s@x.test>:\n> Frage?", "Sure."),
        ("D'accord.\n\nLe lun. 2 juin 2025 à 10:00, Support <s@x.test> a écrit :\n> Question ?", "D'accord."),
        ("Gracias.\n\nDe: Soporte\nEnviado el: lunes\nPara: Ana\nAsunto: Hola\n\nTexto viejo", "Gracias."),
        ("Danke.\n\n-----Ursprüngliche Nachricht-----\nVon: X\nGesendet: Mo\n\nalt", "Danke."),
        (
            "See below.\n\n---------- Forwarded message ---------\n"
            "From: Bob <b@x.test>\nDate: Mon\nSubject: Bug\n\nIt crashes.",
            None,
        ),
    ],
    ids=[
        "blackberry",
        "multi-word-mobile",
        "sent-from-my-desk-is-text",
        "french-iphone",
        "outlook-mobile",
        "double-dash-inside-line",
        "rfc3676-delimiter",
        "german-attribution",
        "french-attribution",
        "spanish-outlook-header",
        "german-original-message",
        "forwarded-message-is-kept",
    ],
)
def test_strip_reply_quirks(text: str, want: str | None) -> None:
    """Known client formats strip to the new text (None: nothing to strip)."""
    assert strip_reply(text) == (text if want is None else want)


def test_inline_reply_keeps_the_questions() -> None:
    """Answers between quoted questions keep the quotes: they make no sense alone."""
    text = "Hi,\n> Does it fail?\nYes, always.\n> Which version?\n3.2\n\nOn Mon, Bob wrote:\n> old"
    assert strip_reply(text) == "Hi,\n> Does it fail?\nYes, always.\n> Which version?\n3.2"


def test_sign_off_with_sender_name_is_a_signature() -> None:
    """ "Thanks,\\nAnn" is removed when Ann sent the mail, kept otherwise."""
    text = "The invoice is wrong.\n\nThanks,\nAnn"
    assert (strip_reply(text, sender="Ann Smith ann@example.com"), strip_reply(text)) == (
        "The invoice is wrong.",
        text,
    )


def test_name_in_a_sentence_is_not_a_signature() -> None:
    """A last paragraph that mentions the sender in prose stays."""
    text = "Hello team,\n\nAnn here. Printer broken again."
    assert strip_reply(text, sender="Ann Smith") == text


def test_stripping_everything_returns_the_text() -> None:
    """A message that is only quoted history is shown whole rather than empty."""
    text = "-----Original Message-----\nFrom: A\nSent: Mon\n\nold text"
    assert strip_reply(text) == text
