"""Sender authenticity: SPF, DKIM and DMARC for one inbound message, as one frozen value.

Two ways to a verdict. If a relay we trust (its authserv-id is configured) already wrote
an Authentication-Results header, we take its results: behind that relay our client IP is
the relay's, so our own SPF check would be meaningless. Otherwise we check ourselves:
SPF (``auth_spf``), DKIM (``auth_dkim``), then DMARC over their results (``auth_dmarc``),
all DNS through one injected resolver under one time budget (``auth_dns``).

Nothing here raises on hostile input: a broken signature or record is a permerror or
fail with a reason, never an exception. The verdict is an annotation; acting on it is
the pipeline's business.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.email.auth_dkim import check_dkim
from inbound.email.auth_dmarc import check_dmarc, discover_policy
from inbound.email.auth_dns import DnsBudget, DnsPythonResolver, DnsResolver, DnsTempError, StaticDns
from inbound.email.auth_model import DkimResult, DmarcResult, SpfResult
from inbound.email.auth_relay import read_trusted_results
from inbound.email.auth_spf import check_spf

__all__ = [
    "DkimResult",
    "DmarcResult",
    "DnsPythonResolver",
    "DnsResolver",
    "DnsTempError",
    "SenderAuth",
    "SpfResult",
    "StaticDns",
    "authenticate",
]

CHECKED = "checked"
DNS_BUDGET_SECONDS = 2.0


@dataclass(frozen=True)
class SenderAuth:
    spf: SpfResult
    dkim: DkimResult  # pass if any signature verified
    dmarc: DmarcResult
    from_domain: str | None
    source: str  # "checked" (we verified) or "relay:<authserv-id>" (read from a trusted Authentication-Results)
    reason: str  # sentences a person can read
    dkim_domains: tuple[str, ...] = ()  # d= of the signatures that verified
    dmarc_policy: str | None = None  # p= (or sp=) published for the From domain; only when we checked

    def as_dict(self) -> dict[str, str | None]:
        """JSON-able, for storing on the message."""
        return {
            "spf": self.spf.value,
            "dkim": self.dkim.value,
            "dmarc": self.dmarc.value,
            "from_domain": self.from_domain,
            "source": self.source,
            "reason": self.reason,
            "dkim_domains": " ".join(self.dkim_domains) or None,
            "dmarc_policy": self.dmarc_policy,
        }


def authenticate(
    raw: bytes,
    *,
    from_domain: str | None,
    client_ip: str | None,
    helo: str | None,
    mail_from: str | None,
    trusted_authserv_ids: frozenset[str],
    dns: DnsResolver,
    dns_budget_seconds: float = DNS_BUDGET_SECONDS,
) -> SenderAuth:
    """SPF, DKIM and DMARC of ``raw``: from a trusted relay's header if there is one, else checked here.

    ``from_domain`` is the RFC 5322.From domain (DMARC's subject); ``client_ip``, ``helo`` and
    ``mail_from`` come from the SMTP session (``client_ip`` None, e.g. mail fetched over IMAP,
    skips SPF). All DNS goes to ``dns`` and stops after ``dns_budget_seconds`` (then temperror).
    """
    relay = read_trusted_results(raw, trusted_ids=trusted_authserv_ids)
    if relay is not None:
        return SenderAuth(
            spf=relay.spf,
            dkim=relay.dkim,
            dmarc=relay.dmarc,
            from_domain=from_domain or relay.header_from,
            source=f"relay:{relay.authserv_id}",
            reason=relay.reason,
            dkim_domains=relay.dkim_domains,
        )
    budget = DnsBudget(dns, seconds=dns_budget_seconds)
    spf = check_spf(client_ip=client_ip, mail_from=mail_from, helo=helo, dns=budget)
    policy = discover_policy(from_domain, budget)
    dkim = check_dkim(raw, dns=budget)
    dmarc = check_dmarc(policy, from_domain=from_domain, spf=spf, dkim=dkim)
    return SenderAuth(
        spf=spf.result,
        dkim=dkim.result,
        dmarc=dmarc.result,
        from_domain=from_domain,
        source=CHECKED,
        reason=" ".join((spf.reason, dkim.reason, dmarc.reason)),
        dkim_domains=dkim.domains,
        dmarc_policy=dmarc.policy,
    )
