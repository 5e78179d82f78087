"""A Slack post that carries its client key (message metadata), and finding it again by that key:
the adapter's half of posting once (bots/surface/post_once.py, thread_sync.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from bots.surface.post_once import Placed

CLIENT_KEY_EVENT = "threadline_post"  # Slack message metadata event_type carrying our client key
LOOKUP_PAGES = 50  # bounded: 50 pages of 200 messages


def post_keyed(client: WebClient, *, key: str, channel: str, thread_ts: str | None, text: str,
               blocks: list[Block]) -> tuple[str, str]:
    """One chat.postMessage carrying `key` in its metadata, so a retry can find it: (channel, ts)."""
    resp = client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=text, blocks=blocks or None,
                                   metadata={"event_type": CLIENT_KEY_EVENT, "event_payload": {"key": key}},
                                   unfurl_links=False, unfurl_media=False)
    return str(resp["channel"]), str(resp["ts"])


def find_by_key(client: WebClient, *, channel: str, thread_ts: str | None, key: str) -> tuple[str, str] | None:
    """The (channel, ts) of our post carrying `key`: in the thread, or (no thread: a top-level post) in
    the channel's history, newest first (an attempt in doubt is at most minutes old)."""
    cursor: str | None = None
    for _ in range(LOOKUP_PAGES):
        if thread_ts is None:
            resp = client.conversations_history(channel=channel, include_all_metadata=True, limit=200,
                                                cursor=cursor)
        else:
            resp = client.conversations_replies(channel=channel, ts=thread_ts, include_all_metadata=True,
                                                limit=200, cursor=cursor)
        messages: list[dict[str, Any]] = resp.get("messages") or []
        for m in messages:
            meta = m.get("metadata") or {}
            if meta.get("event_type") == CLIENT_KEY_EVENT and (meta.get("event_payload") or {}).get("key") == key:
                return channel, str(m["ts"])
        cursor = (resp.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None


@dataclass(frozen=True)
class SlackPost:
    """A post into `channel` (top level when `thread_ts` is None), as a `post_once` Poster."""

    client: WebClient
    channel: str
    thread_ts: str | None
    text: str
    blocks: list[Block] = field(default_factory=list)
    refusals: tuple[type[BaseException], ...] = (SlackApiError,)  # Slack answered ok=false: nothing posted
    unclear: tuple[type[BaseException], ...] = ()

    def find(self, key: str) -> Placed | None:
        found = find_by_key(self.client, channel=self.channel, thread_ts=self.thread_ts, key=key)
        return Placed(*found) if found else None

    def post(self, key: str) -> Placed:
        return Placed(*post_keyed(self.client, key=key, channel=self.channel, thread_ts=self.thread_ts,
                                  text=self.text, blocks=self.blocks))
