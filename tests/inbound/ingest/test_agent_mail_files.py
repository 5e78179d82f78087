"""An agent's mail reply carries its files to the customer (issue 16 + issue 10 item 4)."""

from __future__ import annotations

import uuid
from email import policy
from email.message import EmailMessage

from core.runtime import Runtime
from core.tickets.models import Direction
from tests.inbound.ingest.helpers import deliver, messages
from tests.inbound.ingest.test_agent_mail import PASS, _notified, _to_customer, world  # noqa: F401 (fixture)
from tests.support.jobs import drain_jobs
from tests.support.smtp_sink import SmtpSink, smtp_sink  # noqa: F401 (fixture)

FIX = b"%PDF-1.4\n" + bytes(range(256)) * 16 + b"\n%%EOF\n"
LOGO = b"\x89PNG\r\n\x1a\n" + bytes(300)


def _agent_reply_with_files(token: str, mid: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "ann@acme.test", f"help+{token}@acme.test", "Re: [TL-1] Backup fails"
    msg["Message-ID"], msg["In-Reply-To"] = f"<{uuid.uuid4().hex}@acme.test>", f"<{mid}>"
    msg["Authentication-Results"] = PASS
    msg.set_content("The fixed config is attached.\n\n-- \nAnn, Acme support\n")
    msg.add_alternative('<p>The fixed config is attached.</p><p>Ann <img src="cid:logo@acme"></p>', subtype="html")
    msg.get_payload()[1].add_related(LOGO, "image", "png", cid="<logo@acme>")  # the signature logo
    msg.add_attachment(FIX, maintype="application", subtype="pdf", filename="restic-fix.pdf")
    return msg.as_bytes(policy=policy.SMTP)


def test_the_agents_attachment_reaches_the_customer_and_the_signature_logo_does_not(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply_with_files(token, mid), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    smtp_sink.wait_for(2)
    (sent,) = _to_customer(smtp_sink)
    files = [(p.get_filename(), p.get_content()) for p in sent.message.iter_attachments()]
    assert files == [("restic-fix.pdf", FIX)]


def test_files_over_the_limit_keep_the_reply_as_a_note_and_mail_no_customer(
    runtime: Runtime, world: uuid.UUID, smtp_sink: SmtpSink  # noqa: F811
) -> None:
    runtime.settings.attachment_max_file_bytes = 1000
    token, mid, _ = _notified(runtime, smtp_sink)
    deliver(runtime, _agent_reply_with_files(token, mid), peer="127.0.0.1")
    drain_jobs(runtime, include_delayed=True)
    assert _to_customer(smtp_sink) == []
    (note,) = [m.body_text for m in messages(runtime) if m.direction is Direction.NOTE]
    assert note.startswith("(Not sent to the customer: the file \u201crestic-fix.pdf\u201d is 4.0 KB")
    assert "The fixed config is attached." in note
