"""An agent's thread reply that fails inside the handler is reported to them, with a Retry button."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import text

from core.db.session import APP_ROLE, make_engine
from core.tickets.models import Direction
from tests.bots.slack.conftest import AGENT, CHANNEL, SlackWorld, wait_until
from tests.bots.slack.test_slack_flow import _customer_writes, _messages
from tests.support.slack_signing import block_action, interaction_body


@contextmanager
def _messages_unwritable(owner_url: str) -> Iterator[None]:
    """A real fault inside the handler: the app role may not insert messages for a moment."""
    engine = make_engine(owner_url, pool_size=1)
    try:
        with engine.begin() as conn:
            conn.execute(text(f"REVOKE INSERT ON messages FROM {APP_ROLE}"))
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"GRANT INSERT ON messages TO {APP_ROLE}"))
        engine.dispose()


def test_a_reply_lost_to_a_handler_error_is_reported_ephemerally_and_retry_handles_it(
    world: SlackWorld, owner_url: str
) -> None:
    card_ts = _customer_writes(world)
    ts = "1700000100.000101"
    world.fake.human_says(CHANNEL, AGENT, "Please run restic unlock.", ts, thread_ts=card_ts)
    with _messages_unwritable(owner_url):
        assert world.agent_says("Please run restic unlock.", thread_ts=card_ts, ts=ts) == 200
        (report,) = wait_until(lambda: world.fake.calls_to("chat.postEphemeral"))
    assert (report.args["user"], report.args["channel"], report.args["thread_ts"]) == (AGENT, CHANNEL, card_ts)
    assert "Your reply was not handled" in report.args["text"] and "reference" in report.args["text"]
    shown = report.args["blocks"]
    (button,) = (json.loads(shown) if isinstance(shown, str) else shown)[1]["elements"]
    assert button["action_id"] == "tl_retry_reply"
    assert _messages(world, Direction.OUTBOUND) == []

    payload = block_action("tl_retry_reply", button["value"], AGENT, CHANNEL, ts, thread_ts=card_ts)
    assert world.post_form("/slack/interactions", interaction_body(payload)) == 200
    (reply,) = wait_until(lambda: _messages(world, Direction.OUTBOUND))
    assert "restic unlock" in reply.body_text
