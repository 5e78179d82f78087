"""What a surface shows of long outside text (pure): visible cuts, and where the rest is."""

from __future__ import annotations

import uuid

import pytest

from bots.surface import views
from core.tickets.models import Channel, DeliveryState, Direction


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [("abc", 3, "abc"), ("abcd", 3, "ab…"), ("", 3, ""), ("abcd", 1, "…")],
)
def test_clip_marks_a_cut_with_an_ellipsis(text: str, limit: int, expected: str) -> None:
    assert views.clip(text, limit) == expected


def test_a_short_error_is_shown_whole_and_a_missing_one_is_named() -> None:
    assert (views.shown_error("550 gone"), views.shown_error(None), views.shown_error("  ")) == \
        ("550 gone", "unknown error", "unknown error")


def test_a_huge_error_shows_its_head_and_points_to_the_timeline() -> None:
    shown = views.shown_error("e" * 100_000)
    assert shown == "e" * (views.MAX_SHOWN_ERROR - 1) + "… (cut; the whole error is in the ticket's timeline)"


def test_the_failed_notice_and_the_failure_line_share_the_shown_error() -> None:
    notice = views.reply_notice(message_id=uuid.uuid4(), recipient="bob@c.test", origin=Channel.EMAIL,
                                state=DeliveryState.FAILED, seconds_left=0, error="x" * 1_000)
    shown = views.shown_error("x" * 1_000)
    assert notice.headline == f"Email to bob@c.test: failed: {shown}"
    assert views.delivery_failure("x" * 1_000) == f"The reply was not delivered: {shown}"


def test_a_long_message_is_cut_visibly_and_marked_truncated() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="b" * 5_000, attachments=[("n" * 500, 10)])
    assert (len(post.text), post.text[-1], post.truncated) == (views.MAX_THREAD_TEXT, "…", True)
    assert post.attachments == ("n" * (views.MAX_FILE_NAME - 1) + "… (10 B)",)


def test_a_long_draft_is_cut_visibly_and_marked_truncated() -> None:
    card = views.draft_card(draft_id=uuid.uuid4(), text="d" * 5_000, citations=[], confidence=0.5, state="pending",
                            decided_by=None)
    short = views.draft_card(draft_id=uuid.uuid4(), text="ok", citations=[], confidence=0.5, state="pending",
                             decided_by=None)
    assert (len(card.text), card.text[-1], card.truncated, short.truncated) == (views.MAX_THREAD_TEXT, "…", True, False)


@pytest.mark.parametrize(("direction", "source", "byline"), [
    (Direction.OUTBOUND, Channel.EMAIL, "Ann replied by email"),
    (Direction.NOTE, Channel.EMAIL, "Ann added a note by email"),
    (Direction.OUTBOUND, Channel.SLACK, "Ann"),
    (Direction.NOTE, Channel.TEAMS, "Ann"),
    (Direction.INBOUND, Channel.EMAIL, "Ann"),  # a customer's mail: by email goes without saying
])
def test_the_byline_says_when_an_agent_wrote_by_email(direction: Direction, source: Channel, byline: str) -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Ann", direction=direction, reply_text=None,
                             body_text="x", attachments=[], source=source)
    assert post.byline == byline


def test_a_long_name_keeps_the_by_email_part_of_the_byline() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="A" * 5000, direction=Direction.OUTBOUND,
                             reply_text=None, body_text="x", attachments=[], source=Channel.EMAIL)
    assert post.byline.endswith("… replied by email") and len(post.byline) < 200
