"""Mail ingest throughput: N mails from K concurrent SMTP clients against
(a) a bare aiosmtpd sink that accepts and discards (this machine's ceiling),
(b) our SMTP server (accepted = durably committed to Postgres before 250),
(c) our server plus workers (fully processed: ticket written, outbox rows committed).
The mails are the corpus mail set of bench/mailset.py (real mails, bounces, automatic mail), each
copy with its own Message-ID. Prints mails/s for each and the ratios b/a and c/a; every server
runs in its own process. Run: .venv/bin/python bench/ingest.py [--mails 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import String, cast, func, select  # noqa: E402

sys.path.append(str(ROOT / "bench"))  # after the repo root: bench/core.py must not shadow core
from mailset import build  # noqa: E402

from core.db.migrate import upgrade  # noqa: E402
from core.db.session import make_engine, system_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.jobs.models import OutboxRow  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from core.tickets.models import RawInbound, RawInboundStatus  # noqa: E402
from inbound.ingest.accept import PROCESS_JOB  # noqa: E402

ADDRESS = "help@bench.test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 120) -> None:  # a loaded machine starts slowly
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def blast(port: int, mails: list[bytes], clients: int) -> float:
    """Send `mails` over `clients` persistent connections; seconds until the last 250."""
    per_client = [mails[c::clients] for c in range(clients)]

    def run(batch: list[bytes]) -> None:
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            for mail in batch:
                client.sendmail("customer@customers.test", [ADDRESS], mail)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, per_client))
    return time.perf_counter() - started


def outbox_waiting(rt) -> int:  # type: ignore[no-untyped-def]
    """Jobs of any kind due and not finished yet (a retry waiting out its backoff is not counted)."""
    with system_scope(rt.factory) as session:
        return int(session.execute(select(func.count()).select_from(OutboxRow).where(
            OutboxRow.status.in_(["pending", "enqueued", "running"]), OutboxRow.available_at <= func.now(),
        )).scalar_one())


def processed(rt) -> int:  # type: ignore[no-untyped-def]
    """Raw records done with: processed, ignored, held, or failed for good (a failed record whose
    job is still pending or running is retried and not counted yet)."""
    with system_scope(rt.factory) as session:
        waiting = select(OutboxRow.id).where(
            OutboxRow.job == PROCESS_JOB, OutboxRow.status.in_(["pending", "enqueued", "running"]),
            OutboxRow.payload["raw_id"].astext == cast(RawInbound.id, String),
        )
        return int(session.execute(
            select(func.count()).select_from(RawInbound).where(
                RawInbound.status != RawInboundStatus.RECEIVED, ~waiting.exists()
            )
        ).scalar_one())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="worker processes for (c) (default: one per core, as `threadline up`)")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tlbi", dir="/tmp"))
    settings = Settings(THREADLINE_DATA_DIR=data)
    infra = start_infrastructure(settings)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        owner = make_engine(infra.owner_url, pool_size=1)
        upgrade(owner, runtime_url=infra.database_url)  # components log in as the runtime role
        owner.dispose()
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, pool_size=2)
        with system_scope(rt.factory) as session:
            bootstrap(session=session, support_address=ADDRESS, slack_channel=None)
        env = {**os.environ, "DATABASE_URL": infra.database_url, "REDIS_URL": infra.redis_url or "",
               "THREADLINE_DATA_DIR": str(data), "THREADLINE_LOG_LEVEL": "WARNING",
               "THREADLINE_SENDER_CAP": "1000000", "THREADLINE_SMTP_MESSAGES_PER_MINUTE": "1000000",
               "THREADLINE_SMTP_MAX_CONNECTIONS_PER_IP": "1000"}
        mails = build(100 + 2 * args.mails)  # warm-up, (b) and (c) each get their own distinct mails
        warm, for_b, for_c = mails[:100], mails[100:100 + args.mails], mails[100 + args.mails:]
        print(f"{args.mails} corpus mails from {args.clients} concurrent SMTP clients, {os.cpu_count()} cores, "
              "embedded Postgres (synchronous_commit on)/Redis")

        sink_port = free_port()
        sink = subprocess.Popen([sys.executable, str(ROOT / "bench" / "_sink.py"), str(sink_port)], env=env)
        procs.append(sink)
        wait_port(sink_port)
        blast(sink_port, warm, args.clients)
        a = args.mails / blast(sink_port, for_b, args.clients)
        sink.terminate()
        print(f"  (a) bare aiosmtpd sink, accept+discard : {a:8.0f} mails/s")

        smtp_port = free_port()
        smtp = subprocess.Popen([sys.executable, "-m", "core.cli", "smtp"],
                                env={**env, "THREADLINE_SMTP_PORT": str(smtp_port)}, cwd=ROOT)
        procs.append(smtp)
        wait_port(smtp_port)
        blast(smtp_port, warm, args.clients)
        b = args.mails / blast(smtp_port, for_b, args.clients)
        print(f"  (b) threadline smtp, durably stored    : {b:8.0f} mails/s   b/a = {b / a:.2f}")

        # (c): workers drain what (b) stored, then we time a fresh batch end to end.
        for n in range(args.workers):
            relay = [] if n == 0 else ["--no-relay"]
            procs.append(subprocess.Popen([sys.executable, "-m", "core.cli", "worker", *relay], env=env, cwd=ROOT))
        total = args.mails + 100
        drain = time.perf_counter()
        while (processed(rt) < total or outbox_waiting(rt)) and time.perf_counter() - drain < 600:
            time.sleep(0.2)
        # (b)'s mails and all their follow-up jobs are done: (c)'s mails do not queue behind them.
        print(f"      (b)'s {total} mails processed with their follow-up jobs in {time.perf_counter() - drain:.0f} s")
        started = time.perf_counter()
        blast(smtp_port, for_c, args.clients)
        while processed(rt) < total + args.mails:
            time.sleep(0.05)
        c = args.mails / (time.perf_counter() - started)
        print(f"  (c) received + processed into tickets : {c:8.0f} mails/s   c/a = {c / a:.2f}")
        rt.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        infra.stop()


if __name__ == "__main__":
    main()
