"""Slack user id → agent profile (users.info), cached briefly: every action names its user."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bots.slack.ids import SURFACE
from bots.surface.deps import SurfaceUser


class UserDirectory:
    def __init__(self, client: WebClient, ttl: float = 600) -> None:
        self._client, self._ttl = client, ttl
        self._cache: dict[str, tuple[float, SurfaceUser]] = {}
        self._lock = threading.Lock()

    def get(self, user_id: str) -> SurfaceUser:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(user_id)
            if hit and hit[0] > now:
                return hit[1]
        try:
            user = self._client.users_info(user=user_id)["user"]
            profile = user.get("profile", {})
            found = SurfaceUser(SURFACE, user_id, profile.get("real_name") or user.get("real_name") or user.get("name")
                                or user_id, profile.get("email"))
        except SlackApiError:  # missing users:read.email scope or a deleted user: still usable
            found = SurfaceUser(SURFACE, user_id, user_id, None)
        with self._lock:
            self._cache[user_id] = (now + self._ttl, found)
        return found
