"""Tickets + first messages created per second through the service layer (embedded Postgres).

Each unit is one full unit of work as an edge performs it: find-or-create the contact, allocate
the ticket number, insert ticket + message + timeline events + outbox rows, commit.
Run: .venv/bin/python bench/core.py [--tickets N] [--writers 1 4]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.db.migrate import upgrade  # noqa: E402
from core.db.session import system_scope, tenant_scope  # noqa: E402
from core.infra.embedded import EmbeddedPostgres  # noqa: E402
from core.infra.stack import _ensure_database  # noqa: E402
from core.jobs.outbox import record_events  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import create_inbox, create_tenant  # noqa: E402
from core.tickets import service  # noqa: E402
from core.tickets.models import Channel, Direction  # noqa: E402
from core.tickets.schemas import SYSTEM_ACTOR, NewMessage  # noqa: E402


def run(n: int, writers: int, rt, tenant_id: uuid.UUID, inbox_id: uuid.UUID) -> float:  # type: ignore[no-untyped-def]
    def one(i: int) -> None:
        with tenant_scope(rt.factory, tenant_id) as session:
            contact = service.find_or_create_contact(session=session, tenant_id=tenant_id, email=f"c{i % 500}@bench.test")
            out = service.open_ticket(
                session=session, tenant_id=tenant_id, inbox_id=inbox_id, subject=f"bench {i}", channel=Channel.EMAIL,
                contact_id=contact.id, actor=SYSTEM_ACTOR,
                first_message=NewMessage(direction=Direction.INBOUND, source=Channel.EMAIL, body_text="x" * 400,
                                         author_contact_id=contact.id),
            )
            record_events(session=session, registry=rt.registry, events=out.events)

    started = time.perf_counter()
    with ThreadPoolExecutor(writers) as pool:
        list(pool.map(one, range(n)))
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tickets", type=int, default=3000)
    parser.add_argument("--writers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tlbench", dir="/tmp"))
    pg = EmbeddedPostgres(data)
    url = _ensure_database(pg.start(), "bench")
    try:
        registry = Registry()
        registry.add_job("bench.noop", lambda ctx, payload: None)
        registry.subscribe("ticket.opened", "bench.noop")  # one outbox row per ticket, as with a real surface
        rt = build_runtime(Settings(), database_url=url, redis_url=None, registry=registry, pool_size=8)
        upgrade(rt.engine)
        with system_scope(rt.factory) as session:
            tenant = create_tenant(session=session, name=f"bench {uuid.uuid4().hex[:6]}")
            inbox = create_inbox(session=session, tenant_id=tenant.id, address=f"b{uuid.uuid4().hex[:6]}@bench.test")
            tenant_id, inbox_id = tenant.id, inbox.id
        run(200, 1, rt, tenant_id, inbox_id)  # warm-up: pool, caches
        print(f"tickets+first message per second, {args.tickets} each, embedded Postgres, 2 cores")
        results = {}
        for w in args.writers:
            results[w] = run(args.tickets, w, rt, tenant_id, inbox_id)
            print(f"  writers={w}: {results[w]:8.0f} tickets/s")
        if 1 in results:
            for w, r in results.items():
                if w != 1:
                    print(f"  ratio writers={w} / writers=1: {r / results[1]:.2f}")
        rt.close()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
