"""Attachments both ways in Slack (issue 10, item 4): customers' files as signed links in the thread,
agents' shared files mailed with their reply."""

from __future__ import annotations

import json
import re
import uuid

from sqlalchemy import select

from bots.slack import blocks
from bots.surface import views
from core.db.session import system_scope
from core.tickets.models import Direction
from tests.admin_api.test_attachment_links import PDF, customer_mail
from tests.bots.slack.conftest import CHANNEL, SlackWorld
from tests.inbound.ingest.helpers import deliver
from tests.support.jobs import drain_jobs


def test_a_customers_pdf_opens_from_the_link_in_the_slack_thread(world: SlackWorld) -> None:
    deliver(world.runtime, customer_mail("help@acme.test", [("invoice <March>.pdf", "application/pdf", PDF)]))
    drain_jobs(world.runtime)
    post = world.fake.messages(channel=CHANNEL, thread_ts=world.card_ts())[1]
    line = json.dumps(post["blocks"])
    (url,) = re.findall(r"<(http[^|>]+)\|invoice &lt;March&gt;.pdf \(", line)
    got = world.http.get(url.replace("&amp;", "&").removeprefix(world.runtime.settings.public_url))
    assert (got.status_code, got.content, got.headers["content-type"]) == (200, PDF, "application/pdf")
    assert got.headers["content-disposition"].startswith("attachment; filename=")


def test_file_links_are_escaped_and_fit_a_context_line() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="files", attachments=[("a|b>c&d.pdf", 10)] * 40,
                             links=["https://tl.example/attachments/v1.x"] * 40)
    context = blocks.post_blocks(post, with_original=False)[-1].to_dict()["elements"][0]["text"]
    assert context.startswith(":paperclip: <https://tl.example/attachments/v1.x|a|b&gt;c&amp;d.pdf (10 B)>")
    assert len(context) <= 2000 and context.endswith("more")
