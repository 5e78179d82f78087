"""How one surface writes the few things the shared texts name (a command, a user group, a channel).

The shared layer words its help, usage errors and refusals once; each adapter passes its own
`Vocabulary` (bots/slack/ids.py, bots/teams/ids.py), so no surface's markup lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Vocabulary:
    command: str  # what starts a command: "/threadline" (Slack) or "@Threadline" (Teams)
    mention_example: str  # how an agent names a colleague in a command, e.g. "@ann"
    user_group: Callable[[str], str]  # a user group id as the surface shows it, e.g. "the user group @support"
    channel: Callable[[str], str]  # a channel id as the surface shows it


def plain_group(group_id: str) -> str:
    return f"the user group {group_id}"


def plain_channel(channel_id: str) -> str:
    return "the inbox's channel"
