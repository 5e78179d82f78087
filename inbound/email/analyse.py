"""Everything the ingest pipeline learns from a mail's bytes, in one call that runs in a
budgeted child process (see ``core/budget.py``): parse, bounce report, sender authenticity.

Nothing here touches the database; arguments and result are plain picklable values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from inbound.email.auth_dns import parse_nameservers
from inbound.email.authenticity import DnsPythonResolver, SenderAuth, authenticate
from inbound.email.bounces import BounceReport, detect_bounce
from inbound.email.model import ParsedEmail
from inbound.email.parse import parse_email


@dataclass(frozen=True)
class MailAnalysis:
    parsed: ParsedEmail
    # What the bounce detector found. Only a candidate: the pipeline acts on it when the mail
    # carries machine-readable evidence (see inbound/ingest/steps.py `automatic`).
    bounce: BounceReport | None
    auth: SenderAuth


@dataclass(frozen=True)
class Envelope:
    """What the receiving hop knew: the client (None behind a trusted relay: its IP says nothing
    about the sender), HELO and MAIL FROM; and the name servers to ask (THREADLINE_DNS_SERVERS,
    carried here because the analysis runs in a separate interpreter; "" = the system's)."""

    client_ip: str | None = None
    helo: str | None = None
    mail_from: str | None = None
    trusted_authserv_ids: frozenset[str] = frozenset()
    dns_servers: str = ""


@lru_cache(maxsize=4)
def _resolver(dns_servers: str) -> DnsPythonResolver:
    # One per analysing process and setting: its answer cache outlives a single mail.
    servers = parse_nameservers(dns_servers)
    return DnsPythonResolver(nameservers=servers or None)


def analyse_email(raw: bytes, envelope: Envelope | None = None) -> MailAnalysis:
    """Parse ``raw`` and run the heuristics over it (raises UnparseableEmail for non-mail)."""
    envelope = envelope or Envelope()
    parsed = parse_email(raw)
    from_domain = parsed.from_.addr.rpartition("@")[2].lower() if parsed.from_ and "@" in parsed.from_.addr else None
    auth = authenticate(
        raw, from_domain=from_domain or None, client_ip=envelope.client_ip, helo=envelope.helo,
        mail_from=envelope.mail_from, trusted_authserv_ids=envelope.trusted_authserv_ids,
        dns=_resolver(envelope.dns_servers),
    )
    return MailAnalysis(parsed=parsed, bounce=detect_bounce(parsed, raw), auth=auth)
