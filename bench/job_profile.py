"""Where a mail's time goes on the job path (issue 14): the same pipeline called three ways.

Accepts 3 x N corpus mails (bench/mailset.py) with their `ingest.process` outbox rows, as SMTP's
group commit does, then processes one third each way and prints mails/s and ms/mail:
  direct  `process_raw` per raw record, one thread (the pipeline alone)
  runner  `run_outbox_job` per outbox row, one thread (+ lease claim, heartbeat, finish)
  worker  a real `threadline worker` in this process: relay -> Redis -> dramatiq threads
          (--threads, default THREADLINE_WORKER_THREADS), timed until every row is done.
Also times claim and finish of empty rows alone. The difference between the lines is the job
path's cost per mail. Run: .venv/bin/python bench/job_profile.py [--mails 150] [--threads 4]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the repo root: bench/core.py must not shadow core

from mailset import build  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from core.blobs import BlobStore  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import make_engine, system_scope, tenant_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.jobs import lease as leases  # noqa: E402
from core.jobs.models import OutboxRow, OutboxStatus  # noqa: E402
from core.jobs.runner import run_outbox_job  # noqa: E402
from core.jobs.worker import serve_worker  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from inbound.ingest.accept import PROCESS_JOB, RawIn, content_key, store_raws  # noqa: E402
from inbound.ingest.pipeline import IngestDeps, process_raw  # noqa: E402

ADDRESS = "help@bench.test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=150)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", type=int, default=0, metavar="TOP",
                        help="cProfile every thread of the worker line; print the top functions by own time and our "
                        "functions by cumulative time")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tlbj", dir="/tmp"))
    overrides: dict[str, object] = {"THREADLINE_DATA_DIR": data, "THREADLINE_SENDER_CAP": 1000000}
    if args.threads:
        overrides["THREADLINE_WORKER_THREADS"] = args.threads
    settings = Settings(**overrides)  # type: ignore[arg-type]
    infra = start_infrastructure(settings)
    try:
        owner = make_engine(infra.owner_url, pool_size=1)
        upgrade(owner, runtime_url=infra.database_url)
        owner.dispose()
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url,
                           pool_size=settings.worker_threads + 4)
        with system_scope(rt.factory) as session:
            boot = bootstrap(session=session, support_address=ADDRESS, slack_channel=None)
            tenant_id, inbox_id = boot.tenant.id, boot.inbox.id
        n = args.mails
        mails = build(20 + 3 * n)

        def accept(batch: list[bytes], *, process: bool) -> list[str]:
            """Stored as SMTP's group commit does, just before its line runs (a batched job would
            otherwise take the next line's rows too)."""
            with tenant_scope(rt.factory, tenant_id) as session:
                accepted = store_raws(session=session, tenant_id=tenant_id, process=process, items=[
                    RawIn(inbox_id, "smtp", m, content_key("bench", m), {"rcpt_tos": [ADDRESS]}) for m in batch
                ])
            return [str(a.raw_id) for a in accepted]

        def jobs(raw_ids: list[str]) -> list[int]:
            with system_scope(rt.factory) as session:
                job_of = {row.payload["raw_id"]: row.id for row in session.execute(
                    select(OutboxRow).where(OutboxRow.job == PROCESS_JOB)).scalars()}
            return [job_of[r] for r in raw_ids]

        deps = IngestDeps(settings, rt.factory, rt.registry, BlobStore.from_settings(settings))
        for raw_id in accept(mails[:20], process=False):  # warm-up: budget child, caches
            process_raw(deps, tenant_id=tenant_id, raw_id=uuid.UUID(raw_id))
        print(f"{n} corpus mails per line, load {Path('/proc/loadavg').read_text().split()[:3]}, "
              f"THREADLINE_JOB_BATCH={settings.job_batch}")

        direct = accept(mails[20:20 + n], process=False)
        clock = Clock()
        for raw_id in direct:
            process_raw(deps, tenant_id=tenant_id, raw_id=uuid.UUID(raw_id))
        clock.report("direct process_raw, 1 thread", n)

        lease = leases.DEFAULT_LEASE
        claims, finishes = [], []
        for _ in range(50):  # claim/finish alone, on a throwaway row
            with system_scope(rt.factory) as session:
                row = OutboxRow(tenant_id=tenant_id, job="bench.noop", payload={}, status=OutboxStatus.PENDING)
                session.add(row)
                session.flush()
                row_id = row.id
            t0 = time.perf_counter()
            claim = leases.claim(factory=rt.factory, outbox_id=row_id, lease=lease)
            t1 = time.perf_counter()
            assert claim is not None
            leases.finish(factory=rt.factory, claim=claim, status=OutboxStatus.DONE, error=None)
            claims.append(t1 - t0)
            finishes.append(time.perf_counter() - t1)
        print(f"  lease.claim {1000 * sum(claims) / 50:.1f} ms, lease.finish {1000 * sum(finishes) / 50:.1f} ms")

        runner = jobs(accept(mails[20 + n:20 + 2 * n], process=True))
        clock = Clock()
        for outbox_id in runner:
            run_outbox_job(outbox_id, settings=settings, factory=rt.factory, registry=rt.registry, lease=lease)
        clock.report("run_outbox_job, 1 thread", n)

        ids = jobs(accept(mails[20 + 2 * n:], process=True))
        stop = threading.Event()
        thread = threading.Thread(target=serve_worker, args=(rt,), kwargs={"stop": stop}, daemon=True)
        profiles = profile_threads() if args.profile else []
        clock = Clock()
        thread.start()
        while True:
            with system_scope(rt.factory) as session:
                left = session.execute(select(func.count()).select_from(OutboxRow).where(
                    OutboxRow.id.in_(ids), OutboxRow.status != OutboxStatus.DONE)).scalar_one()
            if not left:
                break
            time.sleep(0.02)
        clock.report(f"worker (relay + dramatiq, {settings.worker_threads} threads)", n)
        if profiles:
            threading.setprofile(None)  # type: ignore[arg-type]
            out = io.StringIO()
            stats = pstats.Stats(*profiles, stream=out)
            stats.sort_stats("tottime").print_stats(args.profile)
            stats.sort_stats("cumulative").print_stats(r"/(bots|core|inbound|knowledge)/", args.profile)
            print(out.getvalue())
        stop.set()
        thread.join(timeout=20)
        with system_scope(rt.factory) as session:  # what one mail puts on the job path
            per_job = session.execute(select(OutboxRow.job, func.count()).group_by(OutboxRow.job)
                                      .order_by(func.count().desc())).all()
        total = 3 * n + 20
        print(f"  outbox rows per mail: {sum(c for _, c in per_job) / total:.1f} "
              f"({', '.join(f'{job} {c / total:.2f}' for job, c in per_job)})")
        rt.close()
    finally:
        infra.stop()


def profile_threads() -> list[cProfile.Profile]:
    """A cProfile per thread started from now on (cProfile alone sees only the thread that enabled it)."""
    profiles: list[cProfile.Profile] = []

    def start(*_: object) -> None:
        sys.setprofile(None)
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    threading.setprofile(start)  # type: ignore[arg-type]
    return profiles


class Clock:
    """Wall time and this process's CPU time (the budget child's and Postgres's are not in it)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def report(self, what: str, n: int) -> None:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        print(f"  {what:45s}: {n / wall:6.1f} mails/s, {1000 * wall / n:6.1f} ms/mail "
              f"(this process's CPU {1000 * cpu / n:5.1f} ms/mail)")


if __name__ == "__main__":
    main()
