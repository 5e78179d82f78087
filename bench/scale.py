"""The processed rate on an empty database and with 1,000,000 tickets stored.

Every lookup the pipeline makes must be indexed and bounded, so the rate with a million tickets
(each with a message that has a Message-ID, across 50,000 contacts) should stay >= 0.8 x the
empty rate. Both runs process the same corpus mails (bench/mailset.py) with `process_raw` in this
process, after a short warm-up. The million rows are generated in SQL (generate_series) as the
owner; a --data-dir keeps them between runs (the second run skips the load).
Run: .venv/bin/python bench/scale.py [--tickets 1000000] [--mails 200] [--data-dir /tmp/tlscale]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.append(str(ROOT / "bench"))  # after the repo root: bench/core.py must not shadow core

from mailset import build  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from core.blobs import BlobStore  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import make_engine, system_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from core.tickets.models import Ticket  # noqa: E402
from inbound.ingest.accept import accept_raw, content_key  # noqa: E402
from inbound.ingest.pipeline import IngestDeps, process_raw  # noqa: E402

ADDRESS = "help@bench.test"

LOAD = [
    "INSERT INTO contacts (id, tenant_id, email, name, created_at) SELECT gen_random_uuid(), :tenant, "
    "'bulk' || g || '@load.test', 'Bulk ' || g, now() FROM generate_series(1, 50000) g "
    "ON CONFLICT DO NOTHING",
    "CREATE TEMP TABLE bulk_contacts AS SELECT id, row_number() OVER (ORDER BY email) - 1 AS n FROM contacts "
    "WHERE tenant_id = :tenant AND email LIKE 'bulk%'",
    "ANALYZE bulk_contacts",
    "INSERT INTO tickets (id, tenant_id, number, inbox_id, contact_id, subject, status, priority, channel, "
    "reply_token, tags, created_at, updated_at) SELECT gen_random_uuid(), :tenant, :base + g, :inbox, "
    "c.id, 'bulk ticket ' || g, "
    "(ARRAY['new','open','pending','resolved','closed'])[1 + g % 5], 'normal', 'email', 'bulk' || g, '{}', "
    "now() - make_interval(secs => g), now() - make_interval(secs => g) "
    "FROM generate_series(1, :n) g JOIN bulk_contacts c ON c.n = g % 50000",
    "INSERT INTO messages (id, tenant_id, ticket_id, direction, source, author_contact_id, body_text, "
    "email_message_id, \"references\", flags, delivery_state, dedupe_key, created_at) "
    "SELECT gen_random_uuid(), t.tenant_id, t.id, 'inbound', 'email', t.contact_id, 'bulk body of ' || t.subject, "
    "'<bulk-' || t.number || '@load.test>', '{}', '{}', 'n/a', md5(t.id::text), t.created_at "
    "FROM tickets t WHERE t.tenant_id = :tenant AND t.number > :base",
    "UPDATE ticket_counters SET last_number = (SELECT max(number) FROM tickets WHERE tenant_id = :tenant) "
    "WHERE tenant_id = :tenant",
    "ANALYZE",
]


def rate(deps: IngestDeps, tenant_id: uuid.UUID, inbox_id: uuid.UUID, mails: list[bytes]) -> float:
    ids = [
        accept_raw(deps.factory, tenant_id=tenant_id, inbox_id=inbox_id, source="smtp", payload=m,
                   idempotency_key=content_key("scale", uuid.uuid4().hex, m), envelope={"rcpt_tos": [ADDRESS]},
                   process=False).raw_id
        for m in mails
    ]
    for raw_id in ids[:20]:  # warm-up
        process_raw(deps, tenant_id=tenant_id, raw_id=raw_id)
    started = time.perf_counter()
    for raw_id in ids[20:]:
        process_raw(deps, tenant_id=tenant_id, raw_id=raw_id)
    return (len(ids) - 20) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="tlscale", dir="/tmp"))
    settings = Settings(THREADLINE_DATA_DIR=data, THREADLINE_SENDER_CAP=1_000_000, THREADLINE_TICKET_CAP=1_000_000)
    infra = start_infrastructure(settings, need_redis=False)
    try:
        owner = make_engine(infra.owner_url, pool_size=1)
        upgrade(owner, runtime_url=infra.database_url)
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=None, pool_size=2)
        with system_scope(rt.factory) as session:
            boot = bootstrap(session=session, support_address=ADDRESS, slack_channel=None)
            tenant_id, inbox_id = boot.tenant.id, boot.inbox.id
            stored = int(session.execute(select(func.count()).select_from(Ticket)).scalar_one())
        deps = IngestDeps(settings, rt.factory, rt.registry, BlobStore.from_settings(settings))
        mails = build(2 * (args.mails + 20))
        print(f"processed rate, {args.mails} corpus mails in one process, {stored} tickets stored at start")
        empty = None
        if stored < args.tickets:
            empty = rate(deps, tenant_id, inbox_id, mails[: args.mails + 20])
            print(f"  {stored:>9} tickets: {empty:8.1f} mails/s")
            started = time.perf_counter()
            with owner.begin() as conn:
                params = {"tenant": tenant_id, "inbox": inbox_id, "n": args.tickets, "base": 10_000_000}
                for statement in LOAD:
                    conn.execute(text(statement), params)
            print(f"  loaded {args.tickets} tickets + messages in {time.perf_counter() - started:.0f} s")
        with system_scope(rt.factory) as session:
            now_stored = int(session.execute(select(func.count()).select_from(Ticket)).scalar_one())
        full = rate(deps, tenant_id, inbox_id, mails[args.mails + 20:])
        print(f"  {now_stored:>9} tickets: {full:8.1f} mails/s")
        if empty:
            print(f"  ratio full / empty: {full / empty:.2f}  (goal >= 0.8)")
        rt.close()
        owner.dispose()
    finally:
        infra.stop()


if __name__ == "__main__":
    main()
