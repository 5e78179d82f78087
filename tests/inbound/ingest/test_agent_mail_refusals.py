"""A refused mail command is answered by mail (issue 16): one short auto-reply to the agent's own
verified address saying what was refused and why; never to the customer, never to automatic mail."""

from __future__ import annotations

import time
import uuid
from email import policy
from email.parser import BytesParser

from hypothesis import given
from hypothesis import strategies as hs
from sqlalchemy import update

from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.models import Agent, AgentRole
from core.tickets.models import Priority
from inbound.ingest.agent_mail import malformed_commands
from tests.inbound.ingest.helpers import deliver
from tests.inbound.ingest.test_agent_mail import _agent_reply, _notified, _ticket, _to_customer, world  # noqa: F401
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import ReceivedMail, SmtpSink, smtp_sink  # noqa: F401 (fixture)


def _to_ann(sink: SmtpSink, after: int) -> list[ReceivedMail]:
    return [m for m in sink.mails[after:] if m.rcpt_tos == ("ann@acme.test",)]


def _text(mail: ReceivedMail) -> str:
    body = mail.message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def test_send_draft_without_a_draft_and_a_bogus_priority_get_one_reply_to_the_agent(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    seen = len(smtp_sink.mails)
    raw = _agent_reply(token, mid, "#send-draft\n#priority bogus\n#resolve")
    ann_mid = BytesParser(policy=policy.default).parsebytes(raw)["Message-ID"]
    deliver(runtime, raw, peer="127.0.0.1")
    deliver(runtime, raw, peer="127.0.0.1")  # the same mail again: still one answer
    drain_jobs(runtime, include_delayed=True)
    (answer,) = smtp_sink.wait_for(seen + 1)[seen:]
    time.sleep(0.3)
    assert _to_ann(smtp_sink, seen) == [answer] and _to_customer(smtp_sink) == []
    msg = answer.message
    assert (msg["Auto-Submitted"], msg["In-Reply-To"], answer.mail_from) == ("auto-replied", ann_mid, "<>")
    text = _text(answer)
    assert "#send-draft: there is no pending draft" in text and "#priority bogus: the priority is one of" in text
    assert "#resolve" not in text.split("--")[0]  # what was done is not listed as refused
    assert _ticket(runtime).status.value == "resolved" and _ticket(runtime).priority is Priority.NORMAL


def test_assign_me_by_a_read_only_agent_is_held_and_answered(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    with system_scope(runtime.factory) as session:
        session.execute(update(Agent).values(role=AgentRole.READ_ONLY))
    seen = len(smtp_sink.mails)
    deliver(runtime, _agent_reply(token, mid, "#assign me"), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    (answer,) = smtp_sink.wait_for(seen + 1)[seen:]
    assert "read-only agent" in _text(answer) and answer.rcpt_tos == ("ann@acme.test",)
    assert _ticket(runtime).assignee_id is None and _to_customer(smtp_sink) == []


def test_an_automatic_or_unverified_mail_gets_no_answer(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    from tests.inbound.ingest.test_agent_mail import FAIL

    token, mid, _ = _notified(runtime, smtp_sink)
    seen = len(smtp_sink.mails)
    deliver(runtime, _agent_reply(token, mid, "#send-draft", headers={"Auto-Submitted": "auto-replied"}),
            peer="127.0.0.1")
    deliver(runtime, _agent_reply(token, mid, "#send-draft", auth=FAIL), peer="127.0.0.1")
    deliver(runtime, _agent_reply(token, mid, "#send-draft", sender="eve@evil.test"), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    time.sleep(0.3)
    assert smtp_sink.mails[seen:] == []


@given(hs.text(alphabet="#abcdeiglmnoprstuy- \n", max_size=200))
def test_malformed_commands_only_take_known_verbs_and_keep_the_rest(text: str) -> None:
    refused, rest = malformed_commands(text)
    assert all(line.startswith("#") and line.split()[0][1:].lower() in {
        "resolve", "pending", "open", "reopen", "close", "assign", "priority", "send-draft", "reply"}
        for line in refused)
    assert rest == text if not refused else rest in text


def test_malformed_commands_examples() -> None:
    assert malformed_commands("#priority bogus\n#assign bob\nThanks!") == (["#priority bogus", "#assign bob"],
                                                                          "Thanks!")
    assert malformed_commands("#1 tip: restart it") == ([], "#1 tip: restart it")
    assert malformed_commands("#priority bogus\n#resolve\nDone.") == (["#priority bogus"], "#resolve\nDone.")
