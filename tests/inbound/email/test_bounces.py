"""detect_bounce against flufl.bounce's corpus, plus hand-built reports.

flufl.bounce's expected.json lists, per file, the detector(s) that must recognise it,
the failed addresses and whether the failure is temporary. Our detectors differ
(we do not copy flufl's), so a file passes when it reports exactly the union of
those addresses (domains compared case-insensitively, as RFC 5321 §2.4 allows) and
the same permanence.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from inbound.email.bounces import BounceReport, detect_bounce
from inbound.email.parse import parse_email
from tests.inbound.email import corpora
from tests.inbound.email.factories import make_raw

_FLUFL = corpora.expected("flufl.bounce")
_FILES: dict[str, list[dict[str, Any]]] = _FLUFL.get("files", {})
_WITH_ADDRESSES = {name: entries for name, entries in _FILES.items() if any(e["addresses"] for e in entries)}
_WITHOUT_ADDRESSES = sorted(name for name, entries in _FILES.items() if not any(e["addresses"] for e in entries))
_KNOWN_MISSES = {
    "yale_01.txt": "Yale's phquery notice names only 'userx'; flufl.bounce's site-specific detector invents "
    "userx@yale.edu and userx@cs.yale.edu, which we do not guess",
}
MIN_RATE = 0.95


def _domain_folded(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.lower()}"


def _detect(name: str) -> BounceReport | None:
    raw = (corpora.require("flufl.bounce") / "tests" / "data" / name).read_bytes()
    return detect_bounce(parse_email(raw), raw)


def _outcome(name: str, entries: list[dict[str, Any]]) -> tuple[set[str], bool, set[str] | None, bool | None]:
    """(expected addresses, expected permanent, found addresses, found permanent)."""
    want = {_domain_folded(a) for entry in entries for a in entry["addresses"]}
    permanent = not any(entry["temporary"] for entry in entries)
    report = _detect(name)
    if report is None:
        return want, permanent, None, None
    return want, permanent, {_domain_folded(a) for a in report.failed_recipients}, report.permanent


@pytest.mark.parametrize(
    "name",
    corpora.params([(n, n) for n in sorted(_WITH_ADDRESSES)], corpus_name="flufl.bounce", xfail=_KNOWN_MISSES),
)
def test_flufl_bounce_failed_addresses(name: str) -> None:
    """Each bounce reports exactly the failed addresses and permanence flufl.bounce expects."""
    want, permanent, found, found_permanent = _outcome(name, _WITH_ADDRESSES[name])
    assert (found, found_permanent) == (want, permanent)


def test_flufl_bounce_detection_rate() -> None:
    """At least 95% of the corpus's bounces give the right failed addresses and permanence."""
    corpora.require("flufl.bounce")
    misses = []
    for name, entries in sorted(_WITH_ADDRESSES.items()):
        want, permanent, found, found_permanent = _outcome(name, entries)
        if (found, found_permanent) != (want, permanent):
            misses.append(f"{name}: want {sorted(want)} permanent={permanent}, got {found} permanent={found_permanent}")
    rate = 1 - len(misses) / len(_WITH_ADDRESSES)
    assert rate >= MIN_RATE, f"rate {rate:.3f} < {MIN_RATE}; misses:\n" + "\n".join(misses)


@pytest.mark.parametrize("name", corpora.params([(n, n) for n in _WITHOUT_ADDRESSES], corpus_name="flufl.bounce"))
def test_flufl_bounce_without_addresses_invents_none(name: str) -> None:
    """Where flufl.bounce finds no address (anonymised, or not a bounce at all), we report none either."""
    report = _detect(name)
    assert (report.failed_recipients if report else ()) == ()


@pytest.mark.parametrize(
    "key", corpora.params([(k, k) for k in _FLUFL.get("_scan_message_extra", {})], corpus_name="flufl.bounce")
)
def test_flufl_scan_message_extra(key: str) -> None:
    """flufl's whole-message scan results (any detector) match ours; a "(temporary)" key
    must also be reported as not permanent."""
    name = key.split("(")[0]
    report = _detect(name)
    want = {_domain_folded(a) for a in _FLUFL["_scan_message_extra"][key]}
    found = {_domain_folded(a) for a in (report.failed_recipients if report else ())}
    temporary = report is not None and report.permanent is False
    assert (found, temporary) == (want, "(temporary)" in key)


# --- hand-built reports ---------------------------------------------------------------

_DSN = (
    b"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n"
    b"To: support@threadline.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
    b'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
    b"--B\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you...\r\n"
    b"--B\r\nContent-Type: message/delivery-status\r\n\r\n"
    b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
    b"Final-Recipient: rfc822; alias-target@Example.NET\r\nOriginal-Recipient: rfc822; Gone@Example.NET\r\n"
    b"Action: failed\r\nStatus: 5.1.1\r\n\r\n"
    b"Final-Recipient: rfc822; slow@example.org\r\nAction: delayed\r\nStatus: 4.4.1\r\n\r\n"
    b"Final-Recipient: rfc822; fine@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
    b"--B\r\nContent-Type: message/rfc822\r\n\r\n"
    b"From: support@threadline.test\r\nMessage-ID: <reply-42@threadline.test>\r\nSubject: Re: x\r\n\r\nbody\r\n"
    b"--B--\r\n"
)


def test_dsn_fields_are_read_per_recipient() -> None:
    """RFC 3464: failed and delayed recipients count (Original-Recipient first), delivered ones do not;
    a 5.x.x failure makes it permanent; the returned message's id is found."""
    report = detect_bounce(parse_email(_DSN), _DSN)
    assert report == BounceReport(("Gone@example.net", "slow@example.org"), True, "reply-42@threadline.test", "dsn")


def test_delay_only_dsn_is_temporary() -> None:
    """A report whose only recipient is delayed (4.x.x) is not permanent."""
    raw = _DSN.replace(b"Action: failed\r\nStatus: 5.1.1", b"Action: delayed\r\nStatus: 4.2.2")
    report = detect_bounce(parse_email(raw), raw)
    assert report is not None and report.permanent is False


def test_customer_quoting_an_error_is_not_a_bounce() -> None:
    """A person pasting "<x@y>: User unknown" into a ticket is no delivery report."""
    raw = make_raw(body="I tried to mail you and got:\n\n<bob@example.com>: 550 5.1.1 User unknown\n\nHelp!\n")
    assert detect_bounce(parse_email(raw), raw) is None


def test_qmail_style_notice_without_dsn() -> None:
    """A plain-text qmail notice names its failed recipient and is permanent."""
    raw = make_raw(
        {"From": "MAILER-DAEMON@mx.example.net", "Subject": "failure notice"},
        body=(
            "Hi. This is the qmail-send program at mx.example.net.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
            "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
            "<gone@example.org>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
            "--- Below this line is a copy of the message.\n\nTo: someone-else@example.org\n"
        ),
    )
    report = detect_bounce(parse_email(raw), raw)
    assert report is not None and (report.failed_recipients, report.permanent) == (("gone@example.org",), True)


def test_regression_long_token_without_at_was_quadratic() -> None:
    """A 200,000-character token with no "@" in a bounce notice is scanned in linear time."""
    raw = make_raw({"From": "MAILER-DAEMON@mx.example.net", "Subject": "failure notice"}, body="a" * 200_000 + "\n")
    started = time.perf_counter()
    detect_bounce(parse_email(raw), raw)
    assert time.perf_counter() - started < 5
