"""Verify the Bot Framework JWT on every request to /teams/messages.

Thin on purpose, with PyJWT: the Microsoft 365 Agents SDK 1.9.0 (`JwtTokenValidator`) maps the
issuer `https://api.botframework.com` to Microsoft's hard-coded JWKS URL (`BOTFRAMEWORK_JWKS_URIS`),
so it cannot be pointed at a local issuer in tests without patching its internals, and it leaves
the `serviceurl` claim unchecked. Here: RS256 only, issuer `https://api.botframework.com`, audience
= TEAMS_APP_ID, expiry with a small skew, the signing key endorsed for the activity's channel, and the
`serviceurl` claim must equal the activity's serviceUrl (a token minted for one service URL cannot
make us send our token to another). Keys come from the JWKS named by TEAMS_OPENID_URL.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from bots.teams.ids import BOT_ISSUER
from core.errors import ConfigurationError, ThreadlineError
from core.settings import Settings

CLOCK_SKEW_SECONDS = 60
_CONFIG_TTL_SECONDS = 24 * 3600  # Bot Framework rotates keys slowly; their JWKS is cached a day too
_REFETCH_SECONDS = 300  # an unknown key id re-reads the JWKS at most this often (no amplification)


class TeamsAuthError(ThreadlineError):
    """The request is not from the Bot Framework for this bot (answered 401, logged at info)."""


@dataclass(frozen=True)
class BotClaims:
    app_id: str
    service_url: str


def same_service_url(a: str, b: str) -> bool:
    return a.rstrip("/").lower() == b.rstrip("/").lower()


class RequestVerifier:
    def __init__(self, settings: Settings) -> None:
        if not settings.teams_app_id:
            raise ConfigurationError("TEAMS_APP_ID is not set")
        self._app_id = settings.teams_app_id
        self._openid_url = settings.teams_openid_url
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched_at: float = -float(_REFETCH_SECONDS)

    def _jwk(self, kid: str) -> dict[str, Any]:
        """The signing key by id; an unknown id re-reads the JWKS (keys rotate), at most every few minutes."""
        with self._lock:
            age = time.monotonic() - self._fetched_at
            if age > _CONFIG_TTL_SECONDS or (kid not in self._keys and age > _REFETCH_SECONDS):
                config = httpx.get(self._openid_url, timeout=10).raise_for_status().json()
                jwks = httpx.get(str(config["jwks_uri"]), timeout=10).raise_for_status().json()
                self._keys = {str(k.get("kid")): k for k in jwks.get("keys", []) if isinstance(k, dict)}
                self._fetched_at = time.monotonic()
            found = self._keys.get(kid)
        if found is None:
            raise TeamsAuthError("the token is signed by a key the Bot Framework does not publish")
        return found

    def verify(self, authorization: str | None, *, service_url: str | None, channel_id: str | None) -> BotClaims:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise TeamsAuthError("no bearer token")
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != "RS256":
                raise TeamsAuthError("not an RS256 token")
            jwk = self._jwk(str(header.get("kid")))
            claims: dict[str, Any] = jwt.decode(
                token, PyJWK(jwk).key, algorithms=["RS256"], audience=self._app_id, issuer=BOT_ISSUER,
                leeway=CLOCK_SKEW_SECONDS, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TeamsAuthError(f"token refused: {type(exc).__name__}") from None
        # The Bot Framework endorses each key for the channels it may sign for (msteams, ...).
        endorsements = jwk.get("endorsements")
        if isinstance(endorsements, list) and channel_id not in endorsements:
            raise TeamsAuthError(f"the signing key is not endorsed for channel {channel_id!r}")
        claimed = claims.get("serviceurl")
        if not isinstance(claimed, str) or not service_url or not same_service_url(claimed, service_url):
            raise TeamsAuthError("the token's serviceurl claim does not match the activity")
        return BotClaims(self._app_id, service_url)
