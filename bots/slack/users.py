"""Slack user id → agent profile and account facts (users.info), and who is in a channel or user
group (conversations.members, usergroups.users.list): every action names its user, so both are
cached briefly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bots.slack.ids import SURFACE
from bots.surface.deps import SurfaceUser

T = TypeVar("T")
MEMBERS_TTL = 60.0  # someone removed from the channel stops acting within a minute


@dataclass(frozen=True)
class SlackAccount:
    """What users.info says about the account (not the profile): what access decides on."""

    team_id: str | None
    is_bot: bool
    is_guest: bool  # is_restricted (multi-channel) or is_ultra_restricted (single-channel guest)
    known: bool  # False: users.info failed, nothing is known (refused: we cannot tell a guest apart)


class _Ttl(Generic[T]):
    def __init__(self, ttl: float) -> None:
        self._ttl = ttl
        self._items: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._items.get(key)
            if hit and hit[0] > now:
                return hit[1]
        value = load()  # outside the lock: one slow Web API call must not stall other users
        with self._lock:
            self._items[key] = (now + self._ttl, value)
        return value


class UserDirectory:
    def __init__(self, client: WebClient, ttl: float = 600, members_ttl: float = MEMBERS_TTL) -> None:
        self._client = client
        self._users: _Ttl[tuple[SurfaceUser, SlackAccount]] = _Ttl(ttl)
        self._members: _Ttl[frozenset[str]] = _Ttl(members_ttl)

    def _load(self, user_id: str) -> tuple[SurfaceUser, SlackAccount]:
        try:
            user = self._client.users_info(user=user_id)["user"]
        except SlackApiError:  # missing scope or a deleted user: a name, but no access
            return SurfaceUser(SURFACE, user_id, user_id, None), SlackAccount(None, False, False, known=False)
        profile = user.get("profile", {})
        found = SurfaceUser(SURFACE, user_id, profile.get("real_name") or user.get("real_name") or user.get("name")
                            or user_id, profile.get("email"))
        guest = bool(user.get("is_restricted") or user.get("is_ultra_restricted"))
        return found, SlackAccount(user.get("team_id"), bool(user.get("is_bot")), guest, known=True)

    def get(self, user_id: str) -> SurfaceUser:
        return self._users.get(user_id, lambda: self._load(user_id))[0]

    def account(self, user_id: str) -> SlackAccount:
        return self._users.get(user_id, lambda: self._load(user_id))[1]

    def channel_members(self, channel: str) -> frozenset[str]:
        return self._members.get(f"c:{channel}", lambda: self._channel_members(channel))

    def group_members(self, group: str) -> frozenset[str]:
        return self._members.get(f"g:{group}", lambda: self._group_members(group))

    def _channel_members(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor: str | None = None
        try:
            while True:
                page = self._client.conversations_members(channel=channel, cursor=cursor, limit=1000)
                members.update(page.get("members") or [])
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    return frozenset(members)
        except SlackApiError:  # the bot left the channel, or lacks the scope: nobody is a member
            return frozenset()

    def _group_members(self, group: str) -> frozenset[str]:
        try:
            return frozenset(self._client.usergroups_users_list(usergroup=group).get("users") or [])
        except SlackApiError:
            return frozenset()
