"""A mail that fails DMARC is labelled "unverified sender" on its card and thread post."""

from __future__ import annotations

import json

from tests.bots.slack.conftest import CHANNEL, SlackWorld
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs

RELAY = "mx.acme.test"


def test_a_dmarc_failed_mail_shows_unverified_on_the_card_and_the_post(world: SlackWorld) -> None:
    world.runtime.settings.trusted_authserv_ids = RELAY
    results = f"{RELAY}; spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail header.from=bank.test"
    deliver(world.runtime, mail(sender="ceo@bank.test", subject="Urgent wire",
                                headers={"Authentication-Results": results}), peer="127.0.0.1")
    drain_jobs(world.runtime)
    card_ts = world.card_ts()
    card, post = world.fake.messages(channel=CHANNEL, thread_ts=card_ts)[:2]
    assert "Unverified sender" in json.dumps(card["blocks"])
    assert "Unverified sender" in json.dumps(post["blocks"])


def test_a_mail_that_passes_has_no_label(world: SlackWorld) -> None:
    deliver(world.runtime, mail(sender="bob@customer.test"))
    drain_jobs(world.runtime)
    card, post = world.fake.messages(channel=CHANNEL, thread_ts=world.card_ts())[:2]
    assert "Unverified" not in json.dumps(card["blocks"]) + json.dumps(post["blocks"])
