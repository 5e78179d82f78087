"""Verify the Bot Framework JWT on every request to /teams/messages.

Thin on purpose, with PyJWT: the Microsoft 365 Agents SDK 1.9.0 (`JwtTokenValidator`) maps the
issuer `https://api.botframework.com` to Microsoft's hard-coded JWKS URL (`BOTFRAMEWORK_JWKS_URIS`),
so it cannot be pointed at a local issuer in tests without patching its internals, and it leaves
the `serviceurl` claim unchecked. Here: RS256 only, issuer `https://api.botframework.com`, audience
= TEAMS_APP_ID, expiry with a small skew, and the `serviceurl` claim must equal the activity's
serviceUrl (a token minted for one service URL cannot make us send our token to another). Keys
come from the JWKS named by TEAMS_OPENID_URL.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from jwt import PyJWKClient

from bots.teams.ids import BOT_ISSUER
from core.errors import ConfigurationError, ThreadlineError
from core.settings import Settings

CLOCK_SKEW_SECONDS = 60
_CONFIG_TTL_SECONDS = 24 * 3600  # Bot Framework rotates keys slowly; their JWKS is cached a day too


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
        self._jwks: PyJWKClient | None = None
        self._fetched_at = 0.0

    def _keys(self) -> PyJWKClient:
        with self._lock:
            if self._jwks is None or time.monotonic() - self._fetched_at > _CONFIG_TTL_SECONDS:
                config = httpx.get(self._openid_url, timeout=10).raise_for_status().json()
                self._jwks = PyJWKClient(str(config["jwks_uri"]), cache_keys=True, lifespan=_CONFIG_TTL_SECONDS)
                self._fetched_at = time.monotonic()
            return self._jwks

    def verify(self, authorization: str | None, *, service_url: str | None) -> BotClaims:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise TeamsAuthError("no bearer token")
        try:
            if jwt.get_unverified_header(token).get("alg") != "RS256":
                raise TeamsAuthError("not an RS256 token")
            key = self._keys().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token, key.key, algorithms=["RS256"], audience=self._app_id, issuer=BOT_ISSUER,
                leeway=CLOCK_SKEW_SECONDS, options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise TeamsAuthError(f"token refused: {type(exc).__name__}") from None
        claimed = claims.get("serviceurl")
        if not isinstance(claimed, str) or not service_url or not same_service_url(claimed, service_url):
            raise TeamsAuthError("the token's serviceurl claim does not match the activity")
        return BotClaims(self._app_id, service_url)
