"""Held mail reaches Slack: one thread per inbox per day, a Release button that makes it a ticket."""

from __future__ import annotations

import json

from sqlalchemy import select

from core.db.session import system_scope
from core.tickets.models import RawInbound, Ticket
from tests.bots.slack.conftest import AGENT, CHANNEL, SlackWorld, wait_until
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs
from tests.support.slack_signing import block_action, interaction_body


def _auto_reply(n: int) -> bytes:
    return mail(sender=f"robot{n}@customer.test", subject=f"Automatic reply: away {n} <!channel>",
                headers={"Auto-Submitted": "auto-replied"})


def test_held_mail_is_listed_in_one_thread_and_release_opens_a_ticket(world: SlackWorld) -> None:
    deliver(world.runtime, _auto_reply(1))
    deliver(world.runtime, _auto_reply(2))
    drain_jobs(world.runtime)
    top = [m for m in world.fake.messages(channel=CHANNEL) if not m.get("thread_ts") or m["thread_ts"] == m["ts"]]
    (header,) = [m for m in top if "Held mail for help@acme.test" in json.dumps(m["blocks"])]
    items = [m for m in world.fake.messages(channel=CHANNEL, thread_ts=header["ts"]) if m["ts"] != header["ts"]]
    assert len(items) == 2
    first = items[0]
    shown = json.dumps(first["blocks"])
    assert "&lt;!channel&gt;" in shown and "<!channel>" not in shown  # outside text is escaped
    (button,) = [e for b in first["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "tl_release_held"

    payload = block_action("tl_release_held", button["value"], AGENT, CHANNEL, first["ts"], thread_ts=header["ts"])
    assert world.post_form("/slack/interactions", interaction_body(payload)) == 200
    wait_until(lambda: "Released by" in json.dumps(world.fake.messages(channel=CHANNEL, thread_ts=header["ts"])))
    drain_jobs(world.runtime)
    with system_scope(world.runtime.factory) as session:
        (ticket,) = session.execute(select(Ticket)).scalars()
        raw = session.get(RawInbound, __import__("uuid").UUID(button["value"]))
    assert ticket.subject.startswith("Automatic reply: away")
    assert raw is not None and not raw.held and raw.released_by
