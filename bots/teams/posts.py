"""A Teams post that carries its client key (a hidden marker in its card, cards.marked), and finding
it again by that marker: the adapter's half of posting once (bots/surface/post_once.py).

The Bot Connector has no client key of its own, and Microsoft's does not list a conversation's
activities: there `find` comes back empty and a post in doubt is made again (at most one duplicate,
never a lost post; the README says so)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bots.surface.post_once import Placed
from bots.teams import cards
from bots.teams.connector import Connector, MaybePosted
from core.errors import OperatorError


@dataclass(frozen=True)
class TeamsPost:
    """`activity` as a reply in the thread conversation `where`, or (`new_thread`) as the root of a new
    thread in the channel `where`; a `post_once` Poster."""

    connector: Connector
    service_url: str
    where: str
    activity: dict[str, Any]
    new_thread: bool = False
    aad_tenant: str | None = None  # for a new thread
    refusals: tuple[type[BaseException], ...] = (OperatorError,)  # an error answer: nothing was posted
    unclear: tuple[type[BaseException], ...] = (MaybePosted,)  # no answer, 502, 504: it may exist

    def find(self, key: str) -> Placed | None:
        found = self.connector.find_marked(self.service_url, conversation_id=self.where, marker=cards.marker(key))
        return Placed(*found) if found else None

    def post(self, key: str) -> Placed:
        activity = cards.marked(self.activity, key)
        if self.new_thread:
            return Placed(*self.connector.create_thread(self.service_url, channel_id=self.where,
                                                        tenant_id=self.aad_tenant, activity=activity))
        return Placed(self.where, self.connector.send(self.service_url, conversation_id=self.where, activity=activity))
