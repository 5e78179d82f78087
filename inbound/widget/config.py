"""An inbox's widget settings (Inbox.widget_config) and the allowed-origin rule.

`widget_config` is JSON: {"enabled": true, "allowed_origins": ["https://shop.example", "https://*.example.com"],
"identity_secret_sealed": "<SecretBox token>", "identity_mode": "off" | "optional" | "enforce", "title": "...",
"color": "#0b5fff"}. The identity secret is set with inbound/widget/identity.py `set_identity_secret`, never
written in plain text; a plain "identity_secret" key is ignored (so nothing verifies until it is sealed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

SEALED_SECRET_KEY = "identity_secret_sealed"


class IdentityMode(StrEnum):
    OFF = "off"  # identities are ignored
    OPTIONAL = "optional"  # a signed identity is trusted, an unsigned one is kept as a plain label
    ENFORCE = "enforce"  # an unsigned identity is refused: no history, no known email


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        default = {"http": 80, "https": 443}.get(self.scheme)
        return f"{self.scheme}://{self.host}" + ("" if self.port == default else f":{self.port}")


def parse_origin(value: str | None) -> Origin | None:
    """A browser Origin (scheme://host[:port]) or None for anything else ("null", paths, junk)."""
    if not value or len(value) > 300:
        return None
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return Origin(parts.scheme, parts.hostname.lower().rstrip("."), port or (443 if parts.scheme == "https" else 80))


@dataclass(frozen=True)
class OriginPattern:
    """`https://shop.example` (exact) or `https://*.example.com` (any subdomain, not the bare domain,
    as in CSP source expressions). Scheme and port always match exactly."""

    scheme: str
    host: str  # without the "*." for wildcards
    port: int
    wildcard: bool

    def matches(self, origin: Origin) -> bool:
        if origin.scheme != self.scheme or origin.port != self.port:
            return False
        if not self.wildcard:
            return origin.host == self.host
        # Label-wise suffix: "example.com.evil.net" and "notexample.com" never match "*.example.com".
        return origin.host.endswith("." + self.host)

    def csp_source(self) -> str:
        return str(Origin(self.scheme, ("*." if self.wildcard else "") + self.host, self.port))


def parse_pattern(value: str) -> OriginPattern | None:
    text = value.strip()
    wildcard = "://*." in text
    origin = parse_origin(text.replace("://*.", "://", 1) if wildcard else text)
    if origin is None:
        return None
    return OriginPattern(origin.scheme, origin.host, origin.port, wildcard)


@dataclass(frozen=True)
class WidgetConfig:
    enabled: bool
    allowed: tuple[OriginPattern, ...]
    identity_mode: IdentityMode
    identity_secret_sealed: str | None  # decrypted only when a signature is checked
    title: str
    color: str

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> WidgetConfig:
        data = data or {}
        patterns = tuple(p for p in (parse_pattern(str(v)) for v in data.get("allowed_origins") or ()) if p)
        try:
            mode = IdentityMode(str(data.get("identity_mode", "off")))
        except ValueError:
            mode = IdentityMode.ENFORCE  # a typo must not silently turn verification off
        sealed = data.get(SEALED_SECRET_KEY)
        color = str(data.get("color") or "#0b5fff")
        return cls(
            enabled=bool(data.get("enabled", True)) and bool(patterns),
            allowed=patterns,
            identity_mode=mode,
            identity_secret_sealed=str(sealed) if sealed else None,
            title=str(data.get("title") or "Chat with us")[:80],
            color=color if is_hex_color(color) else "#0b5fff",
        )

    def allows(self, origin: str | None) -> bool:
        parsed = parse_origin(origin)
        return self.enabled and parsed is not None and any(p.matches(parsed) for p in self.allowed)

    def frame_ancestors(self) -> str:
        sources = " ".join(p.csp_source() for p in self.allowed) if self.enabled else ""
        return f"frame-ancestors {sources or chr(39) + 'none' + chr(39)}"


def is_hex_color(value: str) -> bool:
    return len(value) in (4, 7) and value[0] == "#" and all(c in "0123456789abcdefABCDEF" for c in value[1:])
