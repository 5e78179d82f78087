"""Recipient addresses → inbox and ticket reply token. One pure function, used at SMTP RCPT,
again at DATA, and by the pipeline for plus-addressed replies (never written twice)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Reply tokens are urlsafe base64 (secrets.token_urlsafe): letters, digits, - and _.
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass(frozen=True)
class Recipient:
    address: str  # the inbox address the mail is for (lower-case, without +token)
    reply_token: str | None  # ticket reply token from a plus address, if any


def split_recipient(address: str) -> Recipient | None:
    """'Support+Tok3n@Acme.test' → Recipient('support@acme.test', 'Tok3n'); None when malformed."""
    address = address.strip().strip("<>").strip()
    if address.count("@") != 1 or any(c in address for c in "\r\n\0 "):
        return None
    local, domain = address.rsplit("@", 1)
    if not local or not domain:
        return None
    token: str | None = None
    if "+" in local:
        local, _, candidate = local.partition("+")
        # Tokens are case-sensitive; everything else in an address is compared lower-cased.
        token = candidate if _TOKEN.match(candidate) else None
    return Recipient(f"{local.lower()}@{domain.lower()}", token)
