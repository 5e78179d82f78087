"""`threadline replay`: a raw record that failed is re-run once the cause is fixed."""

from __future__ import annotations

import json
from pathlib import Path

from email import policy
from email.message import EmailMessage

import pytest

from core.runtime import Runtime
from core.tickets.models import RawInboundStatus
from tests.conftest import make_tenant
from tests.inbound.ingest.helpers import deliver, raw_records, tickets
from tests.support.cli import run_cli
from tests.support.servers import RedisForTests


def test_a_failed_record_is_kept_and_replay_processes_it(runtime: Runtime, redis_server: RedisForTests,
                                                         tmp_path: Path) -> None:
    make_tenant(runtime, address="help@acme.test")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"], msg["Message-ID"] = "bob@c.test", "help@acme.test", "logs", "<r1@c.test>"
    msg.set_content("see attached")
    msg.add_attachment(b"log line", maintype="text", subtype="plain", filename="a.log")
    # A real fault: the blob store's directory is a file, so storing the attachment fails.
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("x")
    runtime.settings.data_dir = blocked
    with pytest.raises(OSError):
        deliver(runtime, msg.as_bytes(policy=policy.SMTP))
    (raw,) = raw_records(runtime)
    assert (raw.status, tickets(runtime)) == (RawInboundStatus.FAILED, [])
    assert "NotADirectoryError" in (raw.error or "") or "FileExistsError" in (raw.error or "")
    env = {"DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url,
           "THREADLINE_DATA_DIR": str(tmp_path / "fixed")}
    out = run_cli("replay", "--failed", env=env)
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0, out.stderr
    assert [line["status"] for line in lines] == ["processed"]
    assert [r.status for r in raw_records(runtime)] == [RawInboundStatus.PROCESSED]
    assert [t.subject for t in tickets(runtime)] == ["logs"]


def test_replay_with_nothing_to_do_says_so(runtime: Runtime, redis_server: RedisForTests, tmp_path: Path) -> None:
    env = {"DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url, "THREADLINE_DATA_DIR": str(tmp_path)}
    out = run_cli("replay", "--failed", env=env)
    assert (out.returncode, "nothing to replay" in out.stderr) == (1, True)
