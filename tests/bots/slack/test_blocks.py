"""Block Kit built from surface views (pure): valid shapes, escaped customer text, right buttons."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from bots.slack import blocks
from bots.surface import views
from core.tickets.models import Channel, DeliveryState, Direction, Priority, TicketStatus

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def _card(status: TicketStatus = TicketStatus.NEW, assignee: str | None = None, explicit: bool = False) -> views.TicketCard:
    return views.ticket_card(
        ticket_id=uuid.uuid4(), number=42, subject="<!channel> help", customer="Bob <bob@c.test>", origin=Channel.EMAIL,
        status=status, priority=Priority.HIGH, assignee=assignee, created_at=NOW - timedelta(hours=3), now=NOW,
        explicit_mode=explicit,
    )


def _action_ids(built: list) -> list[str]:  # type: ignore[type-arg]
    return [e["action_id"] for e in built[1].to_dict()["elements"]]


def test_card_shows_fields_and_escapes_customer_text() -> None:
    built = blocks.card_blocks(_card())
    text = str(built[0].to_dict())
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text
    assert "3h" in text and "high" in text


def test_card_buttons_follow_the_ticket_state() -> None:
    assert _action_ids(blocks.card_blocks(_card())) == ["tl_assign_me", "tl_priority", "tl_resolve"]
    assert _action_ids(blocks.card_blocks(_card(TicketStatus.RESOLVED, "Ann"))) == ["tl_priority", "tl_reopen"]
    assert _action_ids(blocks.card_blocks(_card(explicit=True)))[-1] == "tl_reply_to_customer"


def test_long_messages_are_cut_with_a_way_to_the_original() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="x" * 5000, attachments=[("log.txt", 2048)])
    built = [b.to_dict() for b in blocks.post_blocks(post, with_original=post.truncated)]
    assert len(built[1]["text"]["text"]) == views.MAX_THREAD_TEXT
    assert "log.txt (2.0 KB)" in str(built[2]) and built[3]["elements"][0]["action_id"] == "tl_view_original"


def test_pending_notice_offers_undo_and_make_internal_and_sent_offers_nothing() -> None:
    mid = uuid.uuid4()
    pending = views.reply_notice(message_id=mid, recipient="bob@c.test", origin=Channel.EMAIL,
                                 state=DeliveryState.PENDING, seconds_left=10, error=None)
    sent = views.reply_notice(message_id=mid, recipient="bob@c.test", origin=Channel.EMAIL,
                              state=DeliveryState.SENT, seconds_left=0, error=None)
    assert pending.headline == "Email to bob@c.test in 10 s"
    assert [e["action_id"] for e in blocks.notice_blocks(pending)[1].to_dict()["elements"]] == ["tl_undo", "tl_make_internal"]
    assert len(blocks.notice_blocks(sent)) == 1


def test_reply_modal_shows_the_recipient() -> None:
    view = blocks.reply_modal(ticket_id=str(uuid.uuid4()), number=7, recipient="bob@c.test").to_dict()
    assert view["callback_id"] == "tl_reply_modal" and "bob@c.test" in str(view["blocks"][0])
