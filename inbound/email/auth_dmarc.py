"""DMARC (RFC 7489): record discovery, identifier alignment, the pass/fail verdict.

Written here rather than taken from a package: the PyPI ``dmarc`` and ``authheaders``
packages do their own DNS lookups (no resolver to inject), and what we need is small.
We report the result and the published policy; acting on it (quarantine, reject) and
``pct=`` sampling are the caller's business, as are aggregate reports.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from inbound.email.auth_dns import DnsBudget, DnsTempError, normalise_name
from inbound.email.auth_model import DkimOutcome, DkimResult, DmarcOutcome, DmarcResult, SpfOutcome, SpfResult, clip

MAX_RECORD_CHARS = 2048  # real records are a few hundred characters; more is not worth parsing
_VERSION = re.compile(r"v\s*=\s*DMARC1\s*(?:;|$)")  # RFC 7489 §6.4: v= first, value case-sensitive
_POLICIES = frozenset({"none", "quarantine", "reject"})


@dataclass(frozen=True)
class DmarcRecord:
    policy: str
    subdomain_policy: str | None
    strict_dkim: bool
    strict_spf: bool


@functools.cache
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # the list bundled with the package: no network


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the public suffix plus one label (the domain itself if it is a suffix)."""
    domain = normalise_name(domain)
    return _psl().privatesuffix(domain) or domain


def aligned(identifier: str, from_domain: str, *, strict: bool) -> bool:
    """RFC 7489 §3.1: strict means equal; relaxed means the same organizational domain."""
    identifier, from_domain = normalise_name(identifier), normalise_name(from_domain)
    if strict or identifier == from_domain:
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


def parse_record(text: str) -> DmarcRecord | None:
    """Tags of a DMARC record, or None when it is not one we may use (RFC 7489 §6.6.3)."""
    if len(text) > MAX_RECORD_CHARS or not _VERSION.match(text):
        return None
    tags: dict[str, str] = {}
    for part in text.split(";")[1:]:
        name, eq, value = part.partition("=")
        if eq:
            tags.setdefault(name.strip().lower(), value.strip().lower())
    policy = tags.get("p")
    if policy not in _POLICIES:
        # §6.6.3: a missing or invalid p= with a report address means p=none; otherwise no record.
        if "rua" not in tags:
            return None
        policy = "none"
    sp = tags.get("sp")
    return DmarcRecord(
        policy=policy,
        subdomain_policy=sp if sp in _POLICIES else None,
        strict_dkim=tags.get("adkim") == "s",
        strict_spf=tags.get("aspf") == "s",
    )


def _records(name: str, dns: DnsBudget) -> list[DmarcRecord | None]:
    return [parse_record(t.strip()) for t in dns.txt(name) if _VERSION.match(t.strip())]


def find_record(from_domain: str, dns: DnsBudget) -> tuple[DmarcRecord | None, str]:
    """The record that governs ``from_domain`` and a note of where it was (or why there is none)."""
    org = organizational_domain(from_domain)
    for domain in dict.fromkeys((from_domain, org)):  # §6.6.3: the From domain first, then its org domain
        found = _records(f"_dmarc.{domain}", dns)
        if len(found) > 1:
            return None, f"_dmarc.{domain} publishes {len(found)} records"  # §6.6.3: several is none
        if found:
            record = found[0]
            if record is None:
                return None, f"the record at _dmarc.{domain} is unusable"
            if domain != from_domain and record.subdomain_policy:
                record = DmarcRecord(record.subdomain_policy, None, record.strict_dkim, record.strict_spf)
            return record, f"_dmarc.{domain}"
    return None, f"{from_domain} publishes no DMARC record"


def discover_policy(from_domain: str | None, dns: DnsBudget) -> DmarcRecord | DmarcOutcome:
    """The record governing ``from_domain``, or the final outcome when there is none to apply.

    Looked up before DKIM runs, so a slow body hash cannot starve this lookup of its budget.
    """
    domain = normalise_name(from_domain or "")
    if not domain or len(domain) > 253:
        return DmarcOutcome(DmarcResult.NONE, None, "DMARC not checked: the From header names no usable domain.")
    try:
        record, where = find_record(domain, dns)
    except DnsTempError as exc:
        return DmarcOutcome(DmarcResult.TEMPERROR, None, clip(f"DMARC temperror: {exc}."))
    if record is None:
        return DmarcOutcome(DmarcResult.NONE, None, clip(f"DMARC none: {where}."))
    return record


def check_dmarc(
    policy: DmarcRecord | DmarcOutcome, *, from_domain: str | None, spf: SpfOutcome, dkim: DkimOutcome
) -> DmarcOutcome:
    """Pass when SPF or DKIM passed for a domain aligned with the From domain (RFC 7489 §4.2)."""
    if isinstance(policy, DmarcOutcome):
        return policy
    domain = normalise_name(from_domain or "")
    via = _aligned_pass(domain, policy, spf, dkim)
    p = f"p={policy.policy}"
    if via:
        return DmarcOutcome(DmarcResult.PASS, policy.policy, clip(f"DMARC pass: {via} aligns with {domain} ({p})."))
    if dkim.result is DkimResult.TEMPERROR or spf.result is SpfResult.TEMPERROR:
        # A check that could not finish might have aligned; do not call that a fail.
        return DmarcOutcome(
            DmarcResult.TEMPERROR, policy.policy, f"DMARC temperror: SPF or DKIM could not finish ({p})."
        )
    return DmarcOutcome(
        DmarcResult.FAIL, policy.policy, clip(f"DMARC fail: no SPF or DKIM pass aligns with {domain} ({p}).")
    )


def _aligned_pass(from_domain: str, record: DmarcRecord, spf: SpfOutcome, dkim: DkimOutcome) -> str | None:
    for d in dkim.domains:
        if aligned(d, from_domain, strict=record.strict_dkim):
            return f"DKIM signature of {d}"
    if spf.result is SpfResult.PASS and spf.domain and aligned(spf.domain, from_domain, strict=record.strict_spf):
        return f"SPF for {spf.domain}"
    return None
