"""Teams loop latency with real processes: p50/p95 of
  (1) customer mail accepted by our SMTP server (250) → ticket card posted to Teams (a new channel
      thread at the Bot Connector), and
  (2) agent's thread reply activity (with a signed Bot Framework JWT) → reply handed to the outbound
      SMTP relay (undo window 0),
over N tickets. Teams is the local fake Bot Connector (tests/support/fake_teams.py) with the local
JWT issuer (tests/support/teams_jwt.py), the relay an aiosmtpd sink; Threadline runs as
`threadline smtp`, `threadline api` and `threadline worker`.
Run: .venv/bin/python bench/teams_loop.py [--tickets 200]
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
from bench.slack_loop import pct, wait  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import make_engine, system_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.models import Inbox  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from tests.support.fake_teams import FakeTeams  # noqa: E402
from tests.support.smtp_sink import SmtpSink  # noqa: E402
from tests.support.teams_jwt import TeamsJwtIssuer  # noqa: E402

APP_ID, PASSWORD = "6f2a8e0c-5b1d-4c39-9a57-0d3c2e1f4b6a", "bench-password"
CHANNEL, ADDRESS, AGENT = "19:bench@thread.tacv2", "help@bench.test", "29:bench-agent"


def activity(fake: FakeTeams, thread: str, i: int) -> dict[str, object]:
    return {"type": "message", "id": f"19000{i:08d}", "channelId": "msteams", "serviceUrl": fake.service_url,
            "from": {"id": AGENT, "aadObjectId": "b0000000-0000-4000-8000-000000000001", "name": "Bench Agent"},
            "recipient": {"id": f"28:{APP_ID}", "name": "Threadline"},
            "conversation": {"id": thread, "conversationType": "channel", "isGroup": True},
            "channelData": {"channel": {"id": CHANNEL}, "tenant": {"id": "bench-tenant"}}, "text": f"Answer {i}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=200)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tlbt", dir="/tmp"))
    settings = Settings(THREADLINE_DATA_DIR=data)
    infra = start_infrastructure(settings)
    fake, issuer, sink = FakeTeams(app_id=APP_ID, app_password=PASSWORD), TeamsJwtIssuer(APP_ID), SmtpSink()
    fake.__enter__()
    issuer.__enter__()
    sink.start()
    fake.members[AGENT] = {"name": "Bench Agent", "email": "agent@bench.test", "userRole": "user"}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        owner = make_engine(infra.owner_url, pool_size=1)
        upgrade(owner, runtime_url=infra.database_url)  # components log in as the runtime role, never the owner
        owner.dispose()
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, pool_size=2)
        with system_scope(rt.factory) as session:
            bootstrap(session=session, support_address=ADDRESS, slack_channel=None)
            session.execute(update(Inbox).values(teams_channel_id=CHANNEL))
        smtp_port, api_port = free_port(), free_port()
        env = {**os.environ, "DATABASE_URL": infra.database_url, "REDIS_URL": infra.redis_url or "",
               "THREADLINE_DATA_DIR": str(data), "THREADLINE_LOG_LEVEL": "WARNING", "THREADLINE_UNDO_SECONDS": "0",
               "TEAMS_APP_ID": APP_ID, "TEAMS_APP_PASSWORD": PASSWORD, "TEAMS_API_URL": fake.service_url,
               "TEAMS_TOKEN_URL": fake.token_url, "TEAMS_OPENID_URL": issuer.openid_url,
               "THREADLINE_OUTBOUND_SMTP_URL": sink.url, "THREADLINE_SMTP_PORT": str(smtp_port),
               "THREADLINE_API_PORT": str(api_port), "THREADLINE_SENDER_CAP": "100000",
               "THREADLINE_SMTP_MESSAGES_PER_MINUTE": "100000"}
        for command in ("smtp", "api", "worker"):
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", command], env=env, cwd=ROOT))
        wait_port(smtp_port, timeout=180)  # a loaded machine imports slowly
        wait_port(api_port, timeout=180)
        api = httpx.Client(base_url=f"http://127.0.0.1:{api_port}", timeout=60)
        token = issuer.token(service_url=fake.service_url)
        to_card: list[float] = []
        to_mail: list[float] = []
        smtp = smtplib.SMTP("127.0.0.1", smtp_port, timeout=30)
        for i in range(args.tickets + 5):  # the first 5 warm every process up and are not counted
            subject = f"bench ticket {i}"
            raw = (f"From: c{i}@customers.test\r\nTo: {ADDRESS}\r\nSubject: {subject}\r\n"
                   f"Message-ID: <tm{i}@customers.test>\r\n\r\nMy backup fails.\r\n").encode()
            smtp.sendmail(f"c{i}@customers.test", [ADDRESS], raw)
            accepted = time.time()
            card = wait(lambda s=subject: next((c for c in fake.calls_to("create_conversation")
                                                if s in str(c.body) and c.status == 201), None))
            before = len(sink.mails)
            sent = time.time()
            response = api.post("/teams/messages", json=activity(fake, str(card.response["id"]), i),
                                headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.status_code
            mail = wait(lambda n=before: sink.mails[n] if len(sink.mails) > n else None)
            if i >= 5:
                to_card.append(card.at - accepted)
                to_mail.append(mail.received_at - sent)
        smtp.quit()
        print(f"{args.tickets} tickets, one at a time; processes: smtp, api, worker; "
              "fake Bot Connector, aiosmtpd relay")
        for name, values in (("SMTP 250 → card posted", to_card), ("agent activity → mail at relay", to_mail)):
            ms = [v * 1000 for v in values]
            print(f"  {name:<30} p50 {pct(ms, 50):6.0f} ms   p95 {pct(ms, 95):6.0f} ms   max {max(ms):6.0f} ms")
        rt.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        fake.__exit__()
        issuer.__exit__()
        sink.stop()
        infra.stop()


if __name__ == "__main__":
    main()
