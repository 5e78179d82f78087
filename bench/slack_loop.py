"""Slack loop latency with real processes: p50/p95 of
  (1) customer mail accepted by our SMTP server (250) → ticket card posted to Slack, and
  (2) agent's thread reply event → reply handed to the outbound SMTP relay (undo window 0),
over N tickets. Slack is the local fake Web API (tests/support/fake_slack.py), the relay an
aiosmtpd sink; Threadline runs as `threadline smtp`, `threadline api` and `threadline worker`.
Run: .venv/bin/python bench/slack_loop.py [--tickets 200]
"""

from __future__ import annotations

import argparse
import os
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import update  # noqa: E402

from bench.ingest import free_port, wait_port  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import make_engine, system_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.models import Inbox  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.slack_signing import event_body, message_event, sign  # noqa: E402
from tests.support.smtp_sink import SmtpSink  # noqa: E402

CHANNEL, SECRET, ADDRESS = "C0BENCH", "bench-secret", "help@bench.test"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def wait(predicate, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.002)
    raise TimeoutError("timed out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=200)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tlbs", dir="/tmp"))
    settings = Settings(THREADLINE_DATA_DIR=data)
    infra = start_infrastructure(settings)
    fake, sink = FakeSlack().start(), SmtpSink()
    sink.start()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        owner = make_engine(infra.owner_url, pool_size=1)
        upgrade(owner, runtime_url=infra.database_url)  # components log in as the runtime role, never the owner
        owner.dispose()
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, pool_size=2)
        with system_scope(rt.factory) as session:
            bootstrap(session=session, support_address=ADDRESS, slack_channel=CHANNEL)
            session.execute(update(Inbox).values(slack_channel_id=CHANNEL))
        smtp_port, api_port = free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": infra.database_url, "REDIS_URL": infra.redis_url or "",
               "THREADLINE_DATA_DIR": str(data), "THREADLINE_LOG_LEVEL": "WARNING", "THREADLINE_UNDO_SECONDS": "0",
               "SLACK_BOT_TOKEN": "xoxb-test-token", "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": fake.api_url,
               "THREADLINE_OUTBOUND_SMTP_URL": sink.url, "THREADLINE_SMTP_PORT": str(smtp_port),
               "THREADLINE_API_PORT": str(api_port), "THREADLINE_SENDER_CAP": "100000",
               "THREADLINE_SMTP_MESSAGES_PER_MINUTE": "100000"}
        for command in ("smtp", "api", "worker"):
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", command], env=env, cwd=ROOT))
        wait_port(smtp_port)
        wait_port(api_port)
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}")
        to_card: list[float] = []
        to_mail: list[float] = []
        smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30)
        for i in range(args.tickets + 5):  # the first 5 warm every process up and are not counted
            subject = f"bench ticket {i}"
            raw = (f"From: c{i}@customers.test\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
                   f"Message-ID: <sl{i}@customers.test>\r\n\r\nMy backup fails.\r\n").encode()
            smtp.sendmail(f"c{i}@customers.test", [ADDRESS], raw)
            accepted = time.time()
            card = wait(lambda: next((c for c in fake.calls_to("chat.postMessage")
                                      if subject in str(c.args.get("text", "")) and not c.args.get("thread_ts")), None))
            ts = card.response["ts"]
            before = len(sink.mails)
            body = event_body(message_event(CHANNEL, "U0AGENT", f"Answer {i}", f"1800000000.{i:06d}", thread_ts=ts),
                              f"EvB{i}")
            sent = time.time()
            assert api.post("/slack/events", content=body, headers=sign(SECRET, body)).status_code == 200
            mail = wait(lambda: sink.mails[before] if len(sink.mails) > before else None)
            if i >= 5:
                to_card.append(card.at - accepted)
                to_mail.append(mail.received_at - sent)
        smtp.quit()
        print(f"{args.tickets} tickets, one at a time; processes: smtp, api, worker; fake Slack, aiosmtpd relay")
        for name, values in (("SMTP 250 → card posted", to_card), ("agent event → mail at relay", to_mail)):
            ms = [v * 1000 for v in values]
            print(f"  {name:<28} p50 {pct(ms, 50):6.0f} ms   p95 {pct(ms, 95):6.0f} ms   max {max(ms):6.0f} ms")
        rt.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        fake.stop()
        sink.stop()
        infra.stop()


if __name__ == "__main__":
    main()
