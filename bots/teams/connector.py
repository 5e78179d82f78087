"""The Bot Connector REST client (httpx): new channel threads, replies, updates, deletes, members.

Written here rather than taken from the Agents SDK: its connector client is aiohttp-based and
async, our jobs are synchronous, and we must control which hosts receive the bot's token. A
bearer token goes only to an allow-listed service URL host (Microsoft's, or TEAMS_API_URL's).
429 is waited out (Retry-After plus jitter); 412, 502 and 504 are retried with backoff; what
still fails raises `TemporaryFailure` so the job runner retries the job.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from core.errors import ConfigurationError, OperatorError, TemporaryFailure
from core.settings import Settings

log = logging.getLogger(__name__)

BOT_SCOPE = "https://api.botframework.com/.default"
# Bot Framework service URL hosts (public, GCC, GCC High, DoD); TEAMS_API_URL's host is added.
MICROSOFT_HOSTS = ("smba.trafficmanager.net", "smba.infra.gcc.teams.microsoft.com",
                   "smba.infra.gov.teams.microsoft.us", "smba.infra.dod.teams.microsoft.us")
MAX_ACTIVITY_BYTES = 80_000  # Teams refuses messages past about 80 KB
_RETRIED = {412, 429, 502, 504}
_ATTEMPTS = 4
_MAX_WAIT_SECONDS = 30.0


class ServiceUrlRefusedError(OperatorError):
    """A service URL outside the allow-list: the bot's token is not sent there."""


class MaybePosted(TemporaryFailure):
    """A new post got no clear answer (no response, 502, 504): it may exist. Not retried blindly;
    the caller keeps its intent and looks the post up by its marker before posting again."""


def allowed_hosts(settings: Settings) -> frozenset[str]:
    return frozenset({*MICROSOFT_HOSTS, (urlsplit(settings.teams_api_url).hostname or "").lower()} - {""})


def check_service_url(settings: Settings, service_url: str) -> str:
    """The service URL, normalised with one trailing slash, if the bot may send its token there."""
    parts = urlsplit(service_url)
    host = (parts.hostname or "").lower()
    configured = urlsplit(settings.teams_api_url)
    if host not in allowed_hosts(settings):
        raise ServiceUrlRefusedError(f"service URL host {host!r} is not allow-listed")
    if parts.scheme != "https" and (host, parts.scheme) != ((configured.hostname or "").lower(), configured.scheme):
        # plain http only where TEAMS_API_URL itself says so (a local fake)
        raise ServiceUrlRefusedError("service URLs must be https")
    return service_url.rstrip("/") + "/"


def token_url(settings: Settings) -> str:
    if settings.teams_token_url:
        return settings.teams_token_url
    return f"https://login.microsoftonline.com/{settings.teams_tenant_id or 'botframework.com'}/oauth2/v2.0/token"


def _wait(response: httpx.Response | None, attempt: int) -> float:
    after = response.headers.get("Retry-After") if response is not None else None
    base = float(after) if after and after.replace(".", "", 1).isdigit() else 0.5 * 2**attempt
    return min(base + random.uniform(0, 0.25 * max(base, 1.0)), _MAX_WAIT_SECONDS)  # jitter: no thundering herd


class Connector:
    """One per process (thread-safe): the app token is cached until shortly before it expires."""

    def __init__(self, settings: Settings, *, http: httpx.Client | None = None) -> None:
        if not settings.teams_app_id or settings.teams_app_password is None:
            raise ConfigurationError("TEAMS_APP_ID and TEAMS_APP_PASSWORD must be set for Teams")
        self._settings = settings
        self._http = http or httpx.Client(timeout=15)
        self._lock = threading.Lock()
        self._token: tuple[str, float] | None = None

    def _bearer(self) -> str:
        with self._lock:
            if self._token is None or self._token[1] - time.monotonic() < 300:
                s = self._settings
                assert s.teams_app_id and s.teams_app_password
                resp = self._http.post(token_url(s), data={
                    "grant_type": "client_credentials", "client_id": s.teams_app_id,
                    "client_secret": s.teams_app_password.get_secret_value(), "scope": BOT_SCOPE})
                if resp.status_code != 200:
                    raise TemporaryFailure(f"Teams token endpoint answered {resp.status_code}")
                body = resp.json()
                self._token = (str(body["access_token"]), time.monotonic() + float(body.get("expires_in", 3600)))
            return self._token[0]

    def _call(self, method: str, service_url: str, path: str, body: dict[str, Any] | None = None,
              *, creates: bool = False) -> dict[str, Any]:
        """`creates`: a new post, which the connector cannot de-duplicate; an answer that leaves
        open whether it happened raises MaybePosted at once (429 and 412 are clear: retried)."""
        base = check_service_url(self._settings, service_url)
        content = json.dumps(body).encode() if body is not None else None
        if content is not None and len(content) > MAX_ACTIVITY_BYTES:
            raise OperatorError(f"a Teams activity of {len(content)} bytes is over the {MAX_ACTIVITY_BYTES} limit")
        response: httpx.Response | None = None
        for attempt in range(_ATTEMPTS):
            headers = {"Authorization": f"Bearer {self._bearer()}", "Content-Type": "application/json"}
            try:
                response = self._http.request(method, base + path, content=content, headers=headers)
            except httpx.TransportError:
                response = None
                if creates:
                    raise MaybePosted(f"Bot Connector {method} gave no answer: the post may exist") from None
            else:
                if creates and response.status_code in (502, 504):
                    raise MaybePosted(f"Bot Connector {method} answered {response.status_code}: the post may exist")
                if response.status_code < 300:
                    return response.json() if response.content else {}
                if response.status_code not in _RETRIED:
                    raise OperatorError(f"Bot Connector {method} {path.split('/')[1]} answered "
                                        f"{response.status_code}")
            if attempt + 1 < _ATTEMPTS:
                time.sleep(_wait(response, attempt))
        status = response.status_code if response is not None else "no answer"
        raise TemporaryFailure(f"Bot Connector still answers {status} after {_ATTEMPTS} attempts")

    def create_thread(self, service_url: str, *, channel_id: str, tenant_id: str | None,
                      activity: dict[str, Any]) -> tuple[str, str]:
        """A new thread in a channel: (thread conversation id, root activity id)."""
        channel_data: dict[str, Any] = {"channel": {"id": channel_id}}
        if tenant_id:
            channel_data["tenant"] = {"id": tenant_id}
        resp = self._call("POST", service_url, "v3/conversations",
                          {"isGroup": True, "channelData": channel_data, "activity": activity}, creates=True)
        root = str(resp.get("activityId") or "")
        conversation = str(resp.get("id") or "")
        if ";messageid=" not in conversation:  # some regions answer the channel id alone
            conversation = f"{channel_id};messageid={root}"
        return conversation, root

    def send(self, service_url: str, *, conversation_id: str, activity: dict[str, Any]) -> str:
        resp = self._call("POST", service_url, f"v3/conversations/{quote(conversation_id, safe='')}/activities",
                          activity, creates=True)
        return str(resp["id"])

    def find_marked(self, service_url: str, *, conversation_id: str, marker: str) -> tuple[str, str] | None:
        """(thread conversation id, activity id) of a post of ours carrying `marker`
        (cards.marked), from the conversation's activity list; None when there is none, or when
        the service does not list activities (then the caller can only post again)."""
        try:
            resp = self._call("GET", service_url, f"v3/conversations/{quote(conversation_id, safe='')}/activities")
        except TemporaryFailure:
            raise
        except OperatorError:
            log.info("teams conversation activities not listed: cannot look a post up", extra={"marker": marker})
            return None
        for item in resp.get("activities") or []:
            if isinstance(item, dict) and marker in json.dumps(item.get("attachments") or []):
                found = str(item.get("id") or "")
                thread = str(item.get("conversation", {}).get("id") or conversation_id)
                return (thread if ";messageid=" in thread else f"{conversation_id};messageid={found}"), found
        return None

    def update(self, service_url: str, *, conversation_id: str, activity_id: str, activity: dict[str, Any]) -> None:
        self._call("PUT", service_url, f"v3/conversations/{quote(conversation_id, safe='')}/activities/"
                   f"{quote(activity_id, safe='')}", {**activity, "id": activity_id})

    def delete(self, service_url: str, *, conversation_id: str, activity_id: str) -> None:
        self._call("DELETE", service_url, f"v3/conversations/{quote(conversation_id, safe='')}/activities/"
                   f"{quote(activity_id, safe='')}")

    def member(self, service_url: str, *, conversation_id: str, user_id: str) -> dict[str, Any]:
        """A Teams user's profile (email, userPrincipalName, userRole) as the conversation sees them."""
        return self._call("GET", service_url, f"v3/conversations/{quote(conversation_id, safe='')}/members/"
                          f"{quote(user_id, safe='')}")


_shared: dict[tuple[str | None, str], Connector] = {}
_shared_lock = threading.Lock()


def connector_for(settings: Settings) -> Connector:
    """One connector (and one cached token) per app id and token endpoint in this process."""
    key = (settings.teams_app_id, token_url(settings))
    with _shared_lock:
        found = _shared.get(key)
        if found is None or found._settings is not settings:
            found = _shared[key] = Connector(settings)
        return found
