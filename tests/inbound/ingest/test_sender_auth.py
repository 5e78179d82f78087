"""Sender authenticity in the pipeline: recorded on every mail, and a DMARC failure has consequences."""

from __future__ import annotations

import pytest

from core.runtime import Runtime
from core.tickets.models import RawInboundStatus
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, mail, messages, tickets

RELAY = "mx.acme.test"


@pytest.fixture(autouse=True)
def inbox(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    runtime.settings.trusted_authserv_ids = RELAY


def _forged(**kw: str) -> bytes:
    results = f"{RELAY}; spf=fail smtp.mailfrom=evil.test; dkim=none; dmarc=fail header.from=bank.test"
    return mail(sender="ceo@bank.test", headers={"Authentication-Results": results}, **kw)


def test_a_trusted_relays_results_are_recorded_and_a_dmarc_fail_is_flagged(runtime: Runtime) -> None:
    assert deliver(runtime, _forged(), peer="127.0.0.1").status is RawInboundStatus.PROCESSED
    (message,) = messages(runtime)
    assert message.sender_auth is not None
    assert (message.sender_auth["dmarc"], message.sender_auth["spf"], message.sender_auth["source"]) == (
        "fail", "fail", f"relay:{RELAY}")
    assert "dmarc-fail" in message.flags


def test_results_from_an_untrusted_authserv_id_are_ignored(runtime: Runtime) -> None:
    raw = mail(sender="ceo@bank.test", headers={"Authentication-Results": "evil.test; dmarc=fail header.from=bank.test"})
    deliver(runtime, raw, peer="127.0.0.1")
    (message,) = messages(runtime)
    assert message.sender_auth["source"] == "checked"
    assert "dmarc-fail" not in message.flags


def test_a_subject_tag_never_threads_a_dmarc_failed_mail(runtime: Runtime) -> None:
    deliver(runtime, mail(sender="ceo@bank.test", subject="Invoice question"))
    forged = deliver(runtime, _forged(subject="Re: [TL-1] Invoice question"), peer="127.0.0.1")
    assert (forged.ticket_number, forged.thread_rule) == (2, "new")
    assert len(tickets(runtime)) == 2


def test_a_subject_tag_still_threads_a_mail_that_passes(runtime: Runtime) -> None:
    deliver(runtime, mail(sender="ceo@bank.test", subject="Invoice question"))
    ok = f"{RELAY}; spf=pass smtp.mailfrom=bank.test; dkim=pass header.d=bank.test; dmarc=pass header.from=bank.test"
    result = deliver(runtime, mail(sender="ceo@bank.test", subject="Re: [TL-1] Invoice question",
                                   headers={"Authentication-Results": ok}), peer="127.0.0.1")
    assert (result.ticket_number, result.thread_rule) == (1, "subject-tag")
