"""What the search documents (migration 0027) cost ingest: tickets + first message per second, A/B in one run.

bench/core.py before and after a migration compares two runs minutes apart on a shared machine; this
alternates the two schemas in one database and one process, block by block, so load drifts hit both:
- before: no search triggers, the per-row GIN indexes of 0023 and 0024's join index (what 0027 dropped);
- after: the triggers (ticket insert builds the document, message insert appends to it), no old indexes.
Each unit is bench/core.py's: contact, ticket, first message (60 words), timeline, outbox row, commit.
Then the database side alone: one INSERT of 500 messages into existing tickets (rolled back), alternating.
Run: .venv/bin/python bench/search_write_cost.py [--blocks 6] [--per-block 200]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text  # noqa: E402

from core.db.migrate import upgrade  # noqa: E402
from core.db.session import system_scope, tenant_scope  # noqa: E402
from core.infra.embedded import EmbeddedPostgres  # noqa: E402
from core.infra.stack import _ensure_database  # noqa: E402
from core.jobs.outbox import record_events  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.runtime import Runtime, build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import create_inbox, create_tenant  # noqa: E402
from core.tickets import service  # noqa: E402
from core.tickets.models import Channel, Direction  # noqa: E402
from core.tickets.schemas import SYSTEM_ACTOR, NewMessage  # noqa: E402

_OLD_INDEXES = (
    "CREATE INDEX ix_tickets_id_created ON tickets (id) INCLUDE (tenant_id, created_at)",
    "CREATE INDEX ix_tickets_search ON tickets USING gin ((to_tsvector('simple'::regconfig, subject::text) || "
    "array_to_tsvector(ARRAY[' t ' || tenant_id::text])))",
    "CREATE INDEX ix_messages_search ON messages USING gin ((to_tsvector('simple'::regconfig, body_text) || "
    "array_to_tsvector(ARRAY[' t ' || tenant_id::text])))",
)
_WORDS = [f"word{i}" for i in range(2000)]


def set_schema(rt: Runtime, mode: str) -> None:
    with rt.engine.begin() as conn:
        for table in ("tickets", "messages"):
            conn.execute(text(f"ALTER TABLE {table} {'ENABLE' if mode == 'after' else 'DISABLE'} TRIGGER USER"))
        for ddl in _OLD_INDEXES:
            name = ddl.split()[2]
            conn.execute(text(f"DROP INDEX IF EXISTS {name}"))
            if mode == "before":
                conn.execute(text(ddl))


def block(rt: Runtime, tenant_id: uuid.UUID, inbox_id: uuid.UUID, start: int, n: int) -> float:
    started = time.perf_counter()
    for i in range(start, start + n):
        body = " ".join(_WORDS[(i * 7 + k * 13) % len(_WORDS)] for k in range(60))
        with tenant_scope(rt.factory, tenant_id) as session:
            contact = service.find_or_create_contact(session=session, tenant_id=tenant_id,
                                                     email=f"c{i % 500}@bench.test")
            out = service.open_ticket(
                session=session, tenant_id=tenant_id, inbox_id=inbox_id, subject=f"bench {i} {_WORDS[i % 2000]}",
                channel=Channel.EMAIL, contact_id=contact.id, actor=SYSTEM_ACTOR,
                first_message=NewMessage(direction=Direction.INBOUND, source=Channel.EMAIL, body_text=body,
                                         author_contact_id=contact.id),
            )
            record_events(session=session, registry=rt.registry, events=out.events)
    return n / (time.perf_counter() - started)


_MESSAGES = text("""
INSERT INTO messages (id, tenant_id, ticket_id, direction, source, body_text, "references", flags, delivery_state)
SELECT gen_random_uuid(), t.tenant_id, t.id, 'inbound', 'email',
       (SELECT string_agg('word' || ((g * 7 + k * 13 + t.number) % 2000), ' ') FROM generate_series(1, 60) k),
       '{}', '{}', 'n/a'
FROM (SELECT * FROM tickets ORDER BY number DESC LIMIT :n) t, generate_series(1, 1) g
""")


def statement_ms(rt: Runtime, n: int) -> float:
    """Database side alone: one INSERT of `n` messages (one per ticket), rolled back; ms per message."""
    with rt.engine.connect() as conn, conn.begin() as tx:
        started = time.perf_counter()
        conn.execute(_MESSAGES, {"n": n})
        took = time.perf_counter() - started
        tx.rollback()
    return took * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--blocks", type=int, default=6, help="per schema, alternating")
    parser.add_argument("--per-block", type=int, default=200)
    args = parser.parse_args()
    pg = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="tlbench", dir="/tmp")))
    url = _ensure_database(pg.start(), "bench")
    try:
        registry = Registry()
        registry.add_job("bench.noop", lambda ctx, payload: None)
        registry.subscribe("ticket.opened", "bench.noop")
        rt = build_runtime(Settings(), database_url=url, redis_url=None, registry=registry, pool_size=2)
        upgrade(rt.engine)
        with system_scope(rt.factory) as session:
            tenant = create_tenant(session=session, name="bench")
            inbox = create_inbox(session=session, tenant_id=tenant.id, address="b@bench.test")
            tenant_id, inbox_id = tenant.id, inbox.id
        block(rt, tenant_id, inbox_id, 0, 100)  # warm-up
        rates: dict[str, list[float]] = {"before": [], "after": []}
        done = 100
        for b in range(args.blocks * 2):
            mode = ("before", "after")[b % 2]
            set_schema(rt, mode)
            rates[mode].append(block(rt, tenant_id, inbox_id, done, args.per_block))
            done += args.per_block
        print(f"tickets+first message (60 words) per second, one writer, {args.blocks} alternating blocks of "
              f"{args.per_block} each")
        for mode, r in rates.items():
            print(f"  {mode:6} median {statistics.median(r):6.1f}/s   blocks {' '.join(f'{x:.0f}' for x in r)}")
        print(f"  after / before: {statistics.median(rates['after']) / statistics.median(rates['before']):.2f}")
        per_message: dict[str, list[float]] = {"before": [], "after": []}
        for b in range(args.blocks * 2):
            mode = ("before", "after")[b % 2]
            set_schema(rt, mode)
            per_message[mode].append(statement_ms(rt, 500))
        print("database side, one INSERT of 500 messages (60 words) into 500 tickets, alternating:")
        for mode, r in per_message.items():
            print(f"  {mode:6} median {statistics.median(r):6.3f} ms per message")
        set_schema(rt, "after")
        rt.close()
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
