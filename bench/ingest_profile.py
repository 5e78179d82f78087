"""Where a processed mail's time goes: SQL round trips per mail and a cProfile of the pipeline.

Accepts N corpus mails (bench/mailset.py) into an embedded Postgres, then runs `process_raw` on
each in this process, counting every statement sent (a SQLAlchemy event listener, here only)
and profiling. Prints statements and transactions per mail, wall ms per mail, and the top
functions by cumulative time. Run: .venv/bin/python bench/ingest_profile.py [--mails 200]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the repo root: bench/core.py must not shadow core

from mailset import build  # noqa: E402
from sqlalchemy import event  # noqa: E402

from core.blobs import BlobStore  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import make_engine, system_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from inbound.ingest.accept import accept_raw, content_key  # noqa: E402
from inbound.ingest.pipeline import IngestDeps, process_raw  # noqa: E402

ADDRESS = "help@bench.test"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tlbp", dir="/tmp"))
    settings = Settings(THREADLINE_DATA_DIR=data, THREADLINE_SENDER_CAP=1000000)
    infra = start_infrastructure(settings, need_redis=False)
    try:
        owner = make_engine(infra.owner_url, pool_size=1)
        upgrade(owner, runtime_url=infra.database_url)
        owner.dispose()
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=None, pool_size=2)
        with system_scope(rt.factory) as session:
            result = bootstrap(session=session, support_address=ADDRESS, slack_channel=None)
            tenant_id, inbox_id = result.tenant.id, result.inbox.id
        mails = build(args.mails + 20)
        raw_ids = [
            accept_raw(rt.factory, tenant_id=tenant_id, inbox_id=inbox_id, source="smtp", payload=m,
                       idempotency_key=content_key("bench", m), envelope={"rcpt_tos": [ADDRESS]}, process=False).raw_id
            for m in mails
        ]
        deps = IngestDeps(settings, rt.factory, rt.registry, BlobStore.from_settings(settings))
        for raw_id in raw_ids[:20]:  # warm-up: budget child, caches
            process_raw(deps, tenant_id=tenant_id, raw_id=raw_id)
        statements: Counter[str] = Counter()

        def count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
            statements[statement.split(None, 1)[0].upper()] += 1

        event.listen(rt.engine, "before_cursor_execute", count)
        commits = Counter[str]()
        event.listen(rt.engine, "commit", lambda conn: commits.update(["commit"]))
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for raw_id in raw_ids[20:]:
            process_raw(deps, tenant_id=tenant_id, raw_id=raw_id)
        profiler.disable()
        wall = time.perf_counter() - started
        n = args.mails
        total = sum(statements.values())
        print(f"{n} corpus mails processed in one process: {n / wall:.0f} mails/s, {1000 * wall / n:.1f} ms/mail")
        print(f"  SQL statements per mail: {total / n:.1f} "
              f"({', '.join(f'{k} {v / n:.1f}' for k, v in statements.most_common())}); "
              f"commits per mail: {commits['commit'] / n:.2f}")
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue())
        rt.close()
    finally:
        infra.stop()


if __name__ == "__main__":
    main()
