"""Parsing Teams activities and building cards (pure)."""

from __future__ import annotations

import json
import uuid

import pytest

from bots.surface import views
from bots.teams import cards
from bots.teams.activity import strip_mentions, thread_root
from bots.teams.connector import MAX_ACTIVITY_BYTES
from core.tickets.models import Direction


@pytest.mark.parametrize(("text", "expected"), [
    ("<at>Threadline</at> note: on v0.9", "note: on v0.9"),
    ("Thanks <at>Ann Agent</at>, <at>Threadline</at> sending now", "Thanks @Ann Agent, sending now"),
    ("<p>Hello&nbsp;Bob</p><p>try <b>restic unlock</b></p>", "Hello\xa0Bob\ntry restic unlock"),
    ("// <at>Threadline</at> internal", "// internal"),
])
def test_the_bots_mention_and_markup_are_stripped(text: str, expected: str) -> None:
    assert strip_mentions(text, {"Threadline"}) == expected


def test_a_huge_unclosed_tag_run_is_bounded() -> None:
    assert len(strip_mentions("<at>" * 100_000, {"Threadline"})) <= 40_000


@pytest.mark.parametrize(("conversation", "root"), [
    ("19:abc@thread.tacv2;messageid=1700000000001", "1700000000001"),
    ("19:abc@thread.tacv2", None),
    ("a:1Xyz-personal-chat", None),
])
def test_thread_root_comes_from_the_messageid_suffix(conversation: str, root: str | None) -> None:
    assert thread_root(conversation) == root


def test_a_post_with_thousands_of_attachments_stays_under_teams_size_limit() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="x" * 100_000, attachments=[(f"file-{i}.pdf" * 10, 1000) for i in range(5000)])
    activity = cards.message(cards.post_card(post), summary=cards.post_summary(post))
    assert len(json.dumps(activity).encode()) < MAX_ACTIVITY_BYTES


def test_a_customers_markdown_link_cannot_hide_its_target() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob [admin](https://evil.test)",
                             direction=Direction.INBOUND, reply_text=None,
                             body_text="Log in at [your bank](https://evil.test/login)", attachments=[])
    shown = json.dumps(cards.post_card(post), ensure_ascii=False)
    assert "](" not in shown and "https://evil.test/login" in shown
