"""SPF (RFC 7208) with pyspf, its DNS routed through our ``DnsBudget``.

Why pyspf: it is the reference implementation (macros, ``exp=``, ``redirect=``, the
10-lookup and 2-void-lookup limits of §4.6.4), far more than we would want to restate.
Its only DNS entry point is ``query.dns(name, qtype)``, which calls a module-global
function; we override that one method in a subclass instead of patching the global,
so concurrent checks with different resolvers cannot see each other's DNS.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import spf

from inbound.email.auth_dns import DnsBudget, DnsTempError, normalise_name
from inbound.email.auth_model import SpfOutcome, SpfResult, clip

_MAX_IDENTITY_CHARS = 320  # RFC 5321 §4.5.3.1: 64 local + @ + 255 domain
_WORDS = frozenset(r.value for r in SpfResult)


class _BudgetedQuery(spf.query):  # type: ignore[misc]  # pyspf ships no type hints
    """pyspf's query with lookups answered by a ``DnsBudget`` (values in pyspf's shapes)."""

    def __init__(self, *, budget: DnsBudget, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._budget = budget

    def dns(self, name: Any, qtype: str, cnames: Any = None, ignore_void: bool = False) -> list[Any]:
        name = normalise_name(str(name))
        # pyspf's own guard: a name with an empty or over-long label cannot exist.
        if not name or not all(0 < len(label) < 64 for label in name.split(".")):
            return []
        key = (name, qtype)
        if key not in self.cache:
            try:
                self.cache[key] = self._lookup(name, qtype)
            except DnsTempError as exc:
                raise spf.TempError(str(exc)) from exc
        result = list(self.cache[key])  # pyspf sorts MX lists in place
        if not result and not ignore_void:
            self.void_lookups += 1  # RFC 7208 §4.6.4: more than two void lookups is a permerror
            if self.void_lookups > spf.MAX_VOID_LOOKUPS:
                raise spf.PermError(f"Void lookup limit of {spf.MAX_VOID_LOOKUPS} exceeded")
        return result

    def _lookup(self, name: str, qtype: str) -> list[Any]:
        if qtype == "TXT":
            return [[record.encode("utf-8")] for record in self._budget.txt(name)]
        if qtype == "A":
            return list(self._budget.a(name))
        if qtype == "AAAA":
            return list(self._budget.aaaa(name))
        if qtype == "MX":
            return list(self._budget.mx(name))
        if qtype == "PTR":
            return list(self._budget.ptr(name))
        return []  # type SPF (99) is obsolete (RFC 7208 §3.1)


def spf_identity(mail_from: str | None, helo: str | None) -> tuple[str, str | None]:
    """The sender to check and its domain: MAIL FROM, or postmaster@HELO when it is null (RFC 7208 §2.4)."""
    sender = (mail_from or "").strip().strip("<>")[:_MAX_IDENTITY_CHARS]
    if "@" in sender:
        return sender, normalise_name(sender.rpartition("@")[2]) or None
    helo_name = normalise_name(helo or "")[:_MAX_IDENTITY_CHARS]
    return (f"postmaster@{helo_name}", helo_name) if helo_name else ("", None)


def check_spf(*, client_ip: str | None, mail_from: str | None, helo: str | None, dns: DnsBudget) -> SpfOutcome:
    """Evaluate the sender's SPF record for the connecting client."""
    if client_ip is None:
        return SpfOutcome(SpfResult.NONE, None, "SPF not checked: the client IP is unknown.")
    sender, domain = spf_identity(mail_from, helo)
    if domain is None:
        return SpfOutcome(SpfResult.NONE, None, "SPF not checked: neither MAIL FROM nor HELO names a domain.")
    try:
        ip = ipaddress.ip_address(client_ip.strip())
    except ValueError:
        return SpfOutcome(SpfResult.NONE, domain, clip(f"SPF not checked: {client_ip!r} is not an IP address."))
    query = _BudgetedQuery(budget=dns, i=str(ip), s=sender, h=normalise_name(helo or "") or domain)
    try:
        word, _code, explanation = query.check()
    except (ValueError, UnicodeError, AssertionError) as exc:
        # pyspf lets these out on a few malformed records (AssertionError is its strict-mode
        # recursion guard); RFC 7208 §2.6.7 calls a record it cannot interpret a permerror.
        word, explanation = "permerror", f"SPF Permanent Error: {exc}"
    result = SpfResult(word) if word in _WORDS else SpfResult.PERMERROR
    return SpfOutcome(result, domain, clip(_sentence(result, domain, str(ip), str(explanation))))


def _sentence(result: SpfResult, domain: str, ip: str, explanation: str) -> str:
    match result:
        case SpfResult.PASS:
            return f"SPF pass: {domain} allows {ip} to send its mail."
        case SpfResult.FAIL | SpfResult.SOFTFAIL:
            return f"SPF {result}: {domain} does not allow {ip} to send its mail."
        case SpfResult.NEUTRAL:
            return f"SPF neutral: {domain} says nothing definite about {ip}."
        case SpfResult.NONE:
            return f"SPF none: {domain} publishes no SPF record."
        case _:
            # pyspf's own words here (the failing mechanism or lookup), never a domain's exp= text.
            detail = explanation.removeprefix("SPF Permanent Error: ").removeprefix("SPF Temporary Error: ")
            return f"SPF {result} for {domain}: {detail.rstrip('.')}."
