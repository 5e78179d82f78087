"""Teams users as agents: their Azure AD object id, name, email and role, from the members API.

Cached briefly: a thread reply must not cost a Bot Connector round trip every time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from bots.teams.activity import TeamsUser
from bots.teams.connector import Connector
from core.errors import OperatorError, TemporaryFailure

_TTL_SECONDS = 300.0


@dataclass(frozen=True)
class Member:
    known: bool
    email: str | None
    is_guest: bool
    aad_tenant: str | None
    aad_object_id: str | None = None
    name: str | None = None


class TeamsDirectory:
    def __init__(self, connector: Connector) -> None:
        self._connector = connector
        self._cache: dict[str, tuple[float, Member]] = {}
        self._rosters: dict[tuple[str, str], tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def member(self, user: TeamsUser, *, service_url: str, conversation_id: str) -> Member:
        with self._lock:
            hit = self._cache.get(user.id)
            if hit and time.monotonic() - hit[0] < _TTL_SECONDS:
                return hit[1]
        try:
            info = self._connector.member(service_url, conversation_id=conversation_id, user_id=user.id)
        except OperatorError:
            return Member(False, None, False, None)  # not cached: the next message asks again
        email = info.get("email") or info.get("userPrincipalName")
        found = Member(True, str(email).lower() if email else None, info.get("userRole") in ("guest", "anonymous"),
                       info.get("tenantId"), info.get("aadObjectId"), info.get("name"))
        with self._lock:
            self._cache[user.id] = (time.monotonic(), found)
        return found

    def in_team(self, team_id: str, user: TeamsUser, *, service_url: str) -> bool:
        """Whether the user is on the team's roster (the Bot Connector's team members API)."""
        key = (team_id, user.id)
        with self._lock:
            hit = self._rosters.get(key)
            if hit and time.monotonic() - hit[0] < _TTL_SECONDS:
                return hit[1]
        try:
            self._connector.member(service_url, conversation_id=team_id, user_id=user.id)
            found = True
        except TemporaryFailure:
            raise  # not an answer: the job is retried
        except OperatorError:
            found = False  # 404 MemberNotFound: not on the roster
        with self._lock:
            self._rosters[key] = (time.monotonic(), found)
        return found
