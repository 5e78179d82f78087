"""Sender authenticity (SPF, DKIM, DMARC), offline: every DNS answer comes from a StaticDns zone."""

from __future__ import annotations

import base64
import json

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbound.email.auth_dkim import MAX_SIGNATURES
from inbound.email.auth_dmarc import aligned, organizational_domain
from inbound.email.auth_dns import DnsBudget, DnsTempError
from inbound.email.authenticity import DkimResult, DmarcResult, SenderAuth, SpfResult, StaticDns, authenticate
from tests.inbound.email.factories import make_raw

CLIENT = "192.0.2.10"  # RFC 5737 documentation addresses
OTHER = "198.51.100.7"


@pytest.fixture(scope="module")
def key() -> tuple[bytes, str]:
    """A private key (PEM) and its DKIM key record."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode()}"


def sign(raw: bytes, pem: bytes, *, domain: str = "example.com", selector: str = "s1") -> bytes:
    signature = dkim.sign(
        raw, selector.encode(), domain.encode(), pem, include_headers=[b"from", b"to", b"subject", b"date"]
    )
    return signature + raw


def check(raw: bytes, zone: StaticDns, **overrides: object) -> SenderAuth:
    args: dict[str, object] = {
        "from_domain": "example.com",
        "client_ip": CLIENT,
        "helo": "mail.example.com",
        "mail_from": "bounce@example.com",
        "trusted_authserv_ids": frozenset(),
        "dns": zone,
    }
    args.update(overrides)
    return authenticate(raw, **args)  # type: ignore[arg-type]


def keyed_zone(record: str, **extra: dict[str, list[str]]) -> StaticDns:
    return StaticDns({"s1._domainkey.example.com": {"TXT": [record]}, **extra})


# --- DKIM -------------------------------------------------------------------------------


def test_signature_with_published_key_passes(key: tuple[bytes, str]) -> None:
    """A message signed with the key published in DNS verifies, and its d= is recorded."""
    pem, record = key
    auth = check(sign(make_raw(), pem), keyed_zone(record))
    assert (auth.dkim, auth.dkim_domains) == (DkimResult.PASS, ("example.com",))


def test_tampered_body_fails(key: tuple[bytes, str]) -> None:
    """Changing the body after signing breaks the body hash (RFC 6376 §3.7)."""
    pem, record = key
    signed = sign(make_raw(body="Please refund 10 EUR.\n"), pem)
    auth = check(signed.replace(b"10 EUR", b"9000 EUR"), keyed_zone(record))
    assert auth.dkim == DkimResult.FAIL


def test_signature_without_published_key_is_permerror(key: tuple[bytes, str]) -> None:
    """No key record for the selector is a permanent failure (RFC 6376 §6.1.2)."""
    auth = check(sign(make_raw(), key[0]), StaticDns({}))
    assert auth.dkim == DkimResult.PERMERROR


def test_key_lookup_servfail_is_temperror(key: tuple[bytes, str]) -> None:
    """A DNS failure while fetching the key may pass later: temperror, not fail."""
    auth = check(sign(make_raw(), key[0]), StaticDns({}, failing=["s1._domainkey.example.com"]))
    assert auth.dkim == DkimResult.TEMPERROR


def test_unsigned_message_is_none() -> None:
    """No DKIM-Signature at all is dkim=none."""
    assert check(make_raw(), StaticDns({})).dkim == DkimResult.NONE


def test_one_good_signature_among_bad_ones_passes(key: tuple[bytes, str]) -> None:
    """Any valid signature is enough, whatever the others say."""
    pem, record = key
    garbage = b"DKIM-Signature: v=1; a=rsa-sha256; d=evil.test; s=x; h=from; bh=AAAA; b=AAAA\r\n"
    auth = check(garbage + sign(make_raw(), pem), keyed_zone(record))
    assert auth.dkim_domains == ("example.com",)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "v=1; a=rsa-sha256; d=; s=; h=; bh=; b=",
        "v=1; a=rsa-sha999; d=example.com; s=s1; h=from; bh=!!!; b=???",
        "v=1; a=rsa-sha256; c=weird/strange; d=example.com; s=s1; h=from; bh=AAAA; b=AAAA; l=99999999999999",
        "v=1; a=rsa-sha256; d=ex\u00e4mple..com; s=s1; h=from; bh=AAAA; b=AAAA; t=notanumber",
        "=;=;=;;;",
    ],
)
def test_garbage_signature_is_a_result_not_an_exception(value: str, key: tuple[bytes, str]) -> None:
    """A malformed DKIM-Signature yields fail or permerror, never an exception."""
    raw = f"DKIM-Signature: {value}\r\n".encode() + make_raw()
    assert check(raw, keyed_zone(key[1])).dkim in {DkimResult.FAIL, DkimResult.PERMERROR}


def test_only_the_first_signatures_are_verified(key: tuple[bytes, str]) -> None:
    """At most MAX_SIGNATURES keys are fetched, however many signatures a message carries."""
    sig = b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; h=from; bh=AAAA; b=AAAA\r\n"
    zone = keyed_zone(key[1])
    check(sig * 40 + make_raw(), zone)
    assert sum(1 for q in zone.queries if q[1] == "s1._domainkey.example.com") == MAX_SIGNATURES


# --- SPF --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "ip", "expected"),
    [
        ("v=spf1 ip4:192.0.2.0/24 -all", CLIENT, SpfResult.PASS),
        ("v=spf1 ip4:192.0.2.0/24 -all", OTHER, SpfResult.FAIL),
        ("v=spf1 ip4:192.0.2.0/24 ~all", OTHER, SpfResult.SOFTFAIL),
        ("v=spf1 ip4:192.0.2.0/24 ?all", OTHER, SpfResult.NEUTRAL),
        ("v=spf1 include:_spf.provider.test -all", OTHER, SpfResult.PASS),
        ("v=spf1 include:_spf.provider.test -all", CLIENT, SpfResult.FAIL),
        ("v=spf1 a:relay.example.com -all", "203.0.113.5", SpfResult.PASS),
        ("v=spf1 bogus:mechanism -all", CLIENT, SpfResult.PERMERROR),
        ("v=spf1 include:nowhere.test -all", CLIENT, SpfResult.PERMERROR),  # RFC 7208 §5.2
    ],
)
def test_spf_from_published_record(record: str, ip: str, expected: SpfResult) -> None:
    """The MAIL FROM domain's record decides whether the client may send for it."""
    zone = StaticDns(
        {
            "example.com": {"TXT": ["some-verification=abc", record]},
            "_spf.provider.test": {"TXT": ["v=spf1 ip4:198.51.100.0/24 -all"]},
            "relay.example.com": {"A": ["203.0.113.5"]},
        }
    )
    assert check(make_raw(), zone, client_ip=ip).spf == expected


def test_spf_without_record_is_none() -> None:
    """A domain that publishes no SPF record gets spf=none."""
    assert check(make_raw(), StaticDns({})).spf == SpfResult.NONE


def test_spf_servfail_is_temperror() -> None:
    """A DNS failure fetching the record is temperror (RFC 7208 §4.4)."""
    assert check(make_raw(), StaticDns({}, failing=["example.com"])).spf == SpfResult.TEMPERROR


def test_spf_skipped_without_client_ip() -> None:
    """Mail we did not receive over SMTP has no client IP: SPF is none and says why, with no lookup."""
    zone = StaticDns({"example.com": {"TXT": ["v=spf1 -all"]}})
    auth = check(make_raw(), zone, client_ip=None)
    assert (auth.spf, "client IP is unknown" in auth.reason, ("TXT", "example.com") in zone.queries) == (
        SpfResult.NONE,
        True,
        False,
    )


def test_spf_null_mail_from_checks_helo() -> None:
    """A bounce (MAIL FROM:<>) is checked against the HELO name (RFC 7208 §2.4)."""
    zone = StaticDns({"mx.sender.test": {"TXT": [f"v=spf1 ip4:{CLIENT} -all"]}})
    assert check(make_raw(), zone, mail_from="", helo="mx.sender.test").spf == SpfResult.PASS


# --- DMARC ------------------------------------------------------------------------------


def test_dmarc_passes_on_aligned_dkim(key: tuple[bytes, str]) -> None:
    """A valid signature by the From domain passes DMARC even when SPF fails."""
    pem, record = key
    zone = keyed_zone(
        record, **{"_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject"]}, "example.com": {"TXT": ["v=spf1 -all"]}}
    )
    auth = check(sign(make_raw(), pem), zone)
    assert (auth.spf, auth.dmarc, auth.dmarc_policy) == (SpfResult.FAIL, DmarcResult.PASS, "reject")


def test_dmarc_fails_when_nothing_aligns(key: tuple[bytes, str]) -> None:
    """Signed by another domain and SPF-passing for another domain: DMARC fail under p=reject."""
    pem, record = key
    zone = StaticDns(
        {
            "s1._domainkey.mailer.test": {"TXT": [record]},
            "mailer.test": {"TXT": [f"v=spf1 ip4:{CLIENT} -all"]},
            "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject; rua=mailto:d@example.com"]},
        }
    )
    auth = check(sign(make_raw(), pem, domain="mailer.test"), zone, mail_from="b@mailer.test")
    assert (auth.spf, auth.dkim, auth.dmarc, auth.dmarc_policy) == (
        SpfResult.PASS,
        DkimResult.PASS,
        DmarcResult.FAIL,
        "reject",
    )


def test_dmarc_none_without_record() -> None:
    """No _dmarc record at the From domain or its organizational domain: dmarc=none."""
    assert check(make_raw(), StaticDns({})).dmarc == DmarcResult.NONE


def test_dmarc_passes_on_aligned_spf_via_org_domain_record() -> None:
    """Relaxed SPF alignment across subdomains; the org domain's sp= governs a subdomain From."""
    zone = StaticDns(
        {
            "bounces.example.com": {"TXT": [f"v=spf1 ip4:{CLIENT} -all"]},
            "_dmarc.example.com": {"TXT": ["v=DMARC1; p=none; sp=quarantine"]},
        }
    )
    auth = check(make_raw(), zone, from_domain="news.example.com", mail_from="b@bounces.example.com")
    assert (auth.dmarc, auth.dmarc_policy) == (DmarcResult.PASS, "quarantine")


def test_dmarc_strict_spf_alignment_rejects_subdomain() -> None:
    """aspf=s demands the exact From domain (RFC 7489 §3.1.2)."""
    zone = StaticDns(
        {
            "bounces.example.com": {"TXT": [f"v=spf1 ip4:{CLIENT} -all"]},
            "_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject; aspf=s"]},
        }
    )
    assert check(make_raw(), zone, mail_from="b@bounces.example.com").dmarc == DmarcResult.FAIL


def test_dmarc_several_records_mean_none() -> None:
    """Two DMARC records at one name is no policy at all (RFC 7489 §6.6.3)."""
    zone = StaticDns({"_dmarc.example.com": {"TXT": ["v=DMARC1; p=reject", "v=DMARC1; p=none"]}})
    assert check(make_raw(), zone).dmarc == DmarcResult.NONE


@pytest.mark.parametrize(
    ("a", "b", "strict", "expected"),
    [
        ("mail.example.co.uk", "example.co.uk", False, True),
        ("example.co.uk", "other.co.uk", False, False),
        ("Example.COM.", "example.com", True, True),
        ("a.example.com", "example.com", True, False),
    ],
)
def test_alignment(a: str, b: str, strict: bool, expected: bool) -> None:
    """Relaxed alignment compares organizational domains from the public suffix list."""
    assert aligned(a, b, strict=strict) is expected


def test_organizational_domain_of_public_suffix_is_itself() -> None:
    """A bare public suffix has no registrable parent; it stands for itself."""
    assert organizational_domain("co.uk") == "co.uk"


def test_spent_dns_budget_gives_temperror(key: tuple[bytes, str]) -> None:
    """With no time left every check ends as temperror instead of waiting on DNS."""
    auth = check(sign(make_raw(), key[0]), keyed_zone(key[1]), dns_budget_seconds=0)
    assert (auth.spf, auth.dkim, auth.dmarc) == (SpfResult.TEMPERROR, DkimResult.TEMPERROR, DmarcResult.TEMPERROR)


def test_dns_budget_charges_only_time_inside_lookups() -> None:
    """Slow answers use the budget up; time spent between lookups (hashing a body) does not."""
    now = [0.0]

    class SlowDns(StaticDns):
        def txt(self, name: str, *, timeout: float) -> list[str]:
            now[0] += 1.5
            return []

    budget = DnsBudget(SlowDns({}), seconds=2.0, clock=lambda: now[0])
    budget.txt("a.test")
    now[0] += 100.0
    budget.txt("b.test")
    with pytest.raises(DnsTempError):
        budget.txt("c.test")


# --- Trusted relay ----------------------------------------------------------------------

GMAIL_RESULTS = (
    "Authentication-Results: mx.google.com;\r\n"
    "       dkim=pass header.i=@example.com header.s=20230601 header.b=AbCd;\r\n"
    "       spf=pass (google.com: domain of b@example.com designates 192.0.2.10 as permitted sender)"
    " smtp.mailfrom=b@example.com;\r\n"
    "       dmarc=pass (p=REJECT sp=REJECT dis=NONE) header.from=example.com\r\n"
)


def test_trusted_relay_results_are_read_without_dns() -> None:
    """A trusted relay's Authentication-Results are taken as they are, with no lookup of our own."""
    zone = StaticDns({})
    auth = check(GMAIL_RESULTS.encode() + make_raw(), zone, trusted_authserv_ids=frozenset({"MX.google.com"}))
    assert (auth.source, auth.spf, auth.dkim, auth.dmarc, auth.dkim_domains, zone.queries) == (
        "relay:mx.google.com",
        SpfResult.PASS,
        DkimResult.PASS,
        DmarcResult.PASS,
        ("example.com",),
        [],
    )


def test_untrusted_results_header_is_ignored() -> None:
    """An Authentication-Results from an authserv-id we do not trust is just text the sender wrote."""
    auth = check(GMAIL_RESULTS.encode() + make_raw(), StaticDns({}), trusted_authserv_ids=frozenset({"mx.ours.test"}))
    assert (auth.source, auth.dkim) == ("checked", DkimResult.NONE)


def test_topmost_trusted_header_wins_over_forged_one_below() -> None:
    """The relay prepends its header; one lower down with the same id came with the message."""
    forged = (
        "Authentication-Results: mx.ours.test; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com\r\n"
    )
    real = "Authentication-Results: mx.ours.test 1; spf=softfail smtp.mailfrom=example.com; dkim=none\r\n"
    auth = check((real + forged).encode() + make_raw(), StaticDns({}), trusted_authserv_ids=frozenset({"mx.ours.test"}))
    assert (auth.spf, auth.dkim, auth.dmarc) == (SpfResult.SOFTFAIL, DkimResult.NONE, DmarcResult.NONE)


def test_unparseable_trusted_header_is_permerror() -> None:
    """If the trusted header is unreadable we say so rather than fall back to a lower, forgeable one."""
    raw = b"Authentication-Results: mx.ours.test; spf=\r\n" + make_raw()
    auth = check(raw, StaticDns({}), trusted_authserv_ids=frozenset({"mx.ours.test"}))
    assert (auth.source, auth.spf, auth.dkim, auth.dmarc) == (
        "relay:mx.ours.test",
        SpfResult.PERMERROR,
        DkimResult.PERMERROR,
        DmarcResult.PERMERROR,
    )


def test_as_dict_is_json() -> None:
    """The verdict serialises to plain strings for storage on the message."""
    stored = json.loads(json.dumps(check(make_raw(), StaticDns({})).as_dict()))
    assert stored["spf"] == "none" and stored["source"] == "checked" and stored["dkim_domains"] is None


# --- Hostile input ----------------------------------------------------------------------

_HEADER_NAMES = st.sampled_from(["DKIM-Signature", "Authentication-Results", "From", "Received", "X-Junk"])
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
_TAGGED = st.lists(st.tuples(st.sampled_from("vadshbcltxiqp"), _TEXT), max_size=8).map(
    lambda tags: "; ".join(f"{k}={v}" for k, v in tags)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(st.tuples(_HEADER_NAMES, _TEXT | _TAGGED), max_size=8),
    tail=st.binary(max_size=300),
    records=st.lists(
        _TEXT | _TAGGED.map(lambda t: "v=spf1 " + t) | _TAGGED.map(lambda t: "v=DMARC1; " + t), max_size=3
    ),
    client_ip=st.none() | st.sampled_from([CLIENT, "::1", "not-an-ip", ""]),
    mail_from=st.none() | _TEXT,
)
def test_hostile_input_never_raises(
    headers: list[tuple[str, str]], tail: bytes, records: list[str], client_ip: str | None, mail_from: str | None
) -> None:
    """Arbitrary headers, body bytes and DNS records give valid result words, never an exception."""
    raw = b"".join(f"{name}: {value}\r\n".encode("utf-8", "surrogateescape") for name, value in headers) + tail
    names = ["example.com", "_dmarc.example.com", "s1._domainkey.example.com", "s._domainkey.example.com"]
    zone = StaticDns({n: {"TXT": records} for n in names})
    auth = check(raw, zone, client_ip=client_ip, mail_from=mail_from, trusted_authserv_ids=frozenset({"mx.ours.test"}))
    assert (auth.spf in set(SpfResult), auth.dkim in set(DkimResult), auth.dmarc in set(DmarcResult)) == (
        True,
        True,
        True,
    )
