"""Tenant-filtered hybrid retrieval at scale on the embedded Postgres (pgvector HNSW + GIN).

Prints: p50/p95 of top-5 hybrid queries (vector + full text, fused) per tenant, recall@10 of the
HNSW index against an exact scan of the same tenant's rows, and ingest rates.

Data: --chunks synthetic support passages spread over --tenants tenants. Each passage is 3-5
sentences drawn from a pool of generated sentences; the pool is embedded by the real local
model, and a passage's vector is the normalised mean of its sentences' vectors (embedding 100k
full passages would take hours on two cores; the real pipeline's rate is measured separately on
the restic docs: parse + embed + write).
By default the HNSW index is dropped for the load and built afterwards (pgvector's advice for
bulk loads); --incremental keeps it, as a tenant's day-to-day ingest does. --shared-buffers
restarts the bench's own embedded server with that setting (the index should fit in memory).
Run: .venv/bin/python bench/retrieval.py [--chunks 100000] [--tenants 20] [--queries 300]
     [--shared-buffers 1GB] [--incremental]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.db.migrate import upgrade  # noqa: E402
from core.db.session import system_scope, tenant_scope  # noqa: E402
from core.infra.embedded import EmbeddedPostgres  # noqa: E402
from core.infra.stack import _ensure_database  # noqa: E402
from core.registry import Registry  # noqa: E402
from core.runtime import Runtime, build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import create_tenant  # noqa: E402
from knowledge.chunking import Chunk  # noqa: E402
from knowledge.drafts import ExtractiveWriter  # noqa: E402
from knowledge.embeddings import LocalMiniLM  # noqa: E402
from knowledge.ingest import NewDocument, discover, ingest_files, write_document  # noqa: E402
from knowledge.retrieval import (  # noqa: E402
    EXACT_SCAN_MAX_CHUNKS,
    SearchQuery,
    one_pass_passages,
    text_candidates,
    vector_candidates,
)
from knowledge.service import Knowledge  # noqa: E402

RESTIC_DOCS = Path(__file__).resolve().parents[2] / "shared" / "kb" / "restic-docs"

SUBJECTS = ["the backup", "a nightly job", "the restore", "our sync agent", "the mobile app", "the invoice export",
            "the admin console", "a scheduled report", "the password reset", "the SSO login", "the webhook",
            "the API token", "the mail importer", "the retention policy", "the storage quota", "the audit log",
            "the CSV import", "the team calendar", "a shared folder", "the VPN client", "the printer driver",
            "the billing page", "the search index", "the offline mode", "the desktop client", "two-factor login"]
VERBS = ["fails with a timeout", "stops at ninety percent", "is slow on large folders", "skips hidden files",
         "needs admin rights", "retries three times", "uses too much memory", "logs a permission error",
         "runs once a day", "can be paused", "keeps old versions", "compresses data", "encrypts every file",
         "sends an email when done", "does not start after an update", "shows the wrong time zone",
         "duplicates entries", "rejects the certificate", "is limited by the plan", "requires a restart"]
CONTEXTS = ["on Windows laptops", "behind a corporate proxy", "for accounts on the free plan", "after the last update",
            "when the disk is full", "for shared workspaces", "on macOS", "with more than ten users",
            "over a slow connection", "in the EU region", "when two devices sync at once", "for archived projects",
            "during business hours", "with a custom domain", "on Linux servers", "in the browser extension"]
ADVICE = ["Check the settings page first.", "Update to the latest version.", "Contact your administrator.",
          "Clear the local cache and try again.", "Increase the timeout in the configuration.",
          "Exclude temporary folders.", "Renew the token from the dashboard.", "Free some disk space.",
          "Turn on verbose logging and send us the log.", "Schedule it outside business hours."]


def sentence(rng: random.Random) -> str:
    s = f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(CONTEXTS)}."
    return s + (" " + rng.choice(ADVICE) if rng.random() < 0.5 else "")


def percentile(xs: list[float], p: float) -> float:
    return float(np.percentile(np.array(xs), p))


def load(rt: Runtime, model: LocalMiniLM, args: argparse.Namespace, rng: random.Random
         ) -> tuple[list[uuid.UUID], float, str]:
    """Write --chunks synthetic passages over --tenants new tenants; (tenants, chunks/s, index note)."""
    with system_scope(rt.factory) as session:
        tenants = [create_tenant(session=session, name=f"bench {i} {uuid.uuid4().hex[:4]}").id
                   for i in range(args.tenants)]
    pool = list(dict.fromkeys(sentence(rng) for _ in range(args.pool * 3)))[: args.pool]
    started = time.perf_counter()
    pool_vectors = model.embed_documents(pool)
    print(f"embedded {len(pool)} pool sentences: {len(pool) / (time.perf_counter() - started):.0f} sentences/s")

    # Write documents of --per-doc chunks through the real write path (insert + GIN upkeep, and
    # HNSW upkeep with --incremental).
    hnsw = "ix_kb_chunks_hnsw_local_minilm"
    if not args.incremental:
        with rt.engine.begin() as conn:
            index_sql = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"),
                                     {"n": hnsw}).scalar_one()
            conn.execute(text(f"DROP INDEX {hnsw}"))
    started = time.perf_counter()
    written = 0
    n_docs = args.chunks // args.per_doc
    for d in range(n_docs):
        tenant_id = tenants[d % len(tenants)]
        chunks, vectors = [], []
        for c in range(args.per_doc):
            idx = rng.sample(range(len(pool)), rng.randint(3, 5))
            v = pool_vectors[idx].mean(axis=0)
            chunks.append(Chunk(c, (f"Topic {d}", f"Section {c}"), " ".join(pool[i] for i in idx)))
            vectors.append(v / np.linalg.norm(v))
        doc = NewDocument(source=f"synthetic://{d}", url=None, title=f"Topic {d}", format="text",
                          checksum=f"{d:064d}", embedding_model=model.key, chunks=chunks, vectors=vectors)
        with tenant_scope(rt.factory, tenant_id) as session:
            write_document(session=session, tenant_id=tenant_id, inbox_id=None, doc=doc, existing=None)
        written += len(chunks)
        if (d + 1) % max(1, n_docs // 10) == 0:
            rate = written / (time.perf_counter() - started)
            print(f"  {written:>7} chunks written ({rate:.0f} chunks/s)", flush=True)
    write_rate = written / (time.perf_counter() - started)
    build = ""
    if not args.incremental:
        started = time.perf_counter()
        with rt.engine.begin() as conn:
            conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
            conn.execute(text(index_sql))
        build = f"; HNSW index built afterwards in {time.perf_counter() - started:.0f}s"
    return tenants, write_rate, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--pool", type=int, default=6000, help="distinct sentences embedded by the model")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--per-doc", type=int, default=10, help="chunks per document")
    parser.add_argument("--shared-buffers", default=None, help="e.g. 1GB (default: the server's)")
    parser.add_argument("--incremental", action="store_true", help="keep the HNSW index during the load")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep the database here; a later run with the same folder skips the load")
    args = parser.parse_args()
    rng = random.Random(7)

    data = args.data_dir or Path(tempfile.mkdtemp(prefix="tlkbbench", dir="/tmp"))
    data.mkdir(parents=True, exist_ok=True)
    pg = EmbeddedPostgres(data)
    admin = pg.start()
    if args.shared_buffers:
        engine = create_engine(admin, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text(f"ALTER SYSTEM SET shared_buffers = '{args.shared_buffers}'"))
        engine.dispose()
        pg.stop()
        admin = pg.start()
    url = _ensure_database(admin, "kbbench")
    rt = build_runtime(Settings(), database_url=url, redis_url=None, registry=Registry(), pool_size=4)
    try:
        upgrade(rt.engine)
        with rt.engine.connect() as conn:
            pg_version, vector_version, buffers = conn.execute(text(
                "SELECT current_setting('server_version'), extversion, current_setting('shared_buffers') "
                "FROM pg_extension WHERE extname = 'vector'")).one()
        print(f"Postgres {pg_version}, pgvector {vector_version}, shared_buffers {buffers}; "
              f"{args.chunks} chunks over {args.tenants} tenants")
        with system_scope(rt.factory) as session:
            tenants = list(session.execute(text("SELECT DISTINCT tenant_id FROM kb_chunks")).scalars())
        model = LocalMiniLM().load()
        print(f"local-minilm loaded in {model.load_seconds:.2f}s")
        if tenants:
            print(f"reusing the {len(tenants)} tenants' chunks already in {data}")
            write_rate = 0.0
            build = ""
        else:
            tenants, write_rate, build = load(rt, model, args, rng)
        with rt.engine.begin() as conn:
            conn.execute(text("ANALYZE kb_chunks"))

        # Queries: fresh sentences (not in the pool), each for a random tenant.
        qrng = random.Random(11)  # its own generator: a reused database gets the same queries
        questions = [sentence(qrng) for _ in range(args.queries)]
        started = time.perf_counter()
        qvecs = [model.embed_query(q) for q in questions]
        embed_ms = (time.perf_counter() - started) * 1000 / len(questions)
        ordered = sorted(tenants)
        queries = [SearchQuery(q, v, model.key, qrng.choice(ordered)) for q, v in zip(questions, qvecs, strict=True)]
        for q in queries[:20]:  # warm-up: caches, plans
            with tenant_scope(rt.factory, q.tenant_id) as session:
                one_pass_passages(session=session, query=q)
                text_candidates(session=session, query=q)
                vector_candidates(session=session, query=q, method="hnsw")

        # Knowledge.search as the service runs it, the query vector given: at this size a tenant is
        # ranked in one pass; `indexed` forces the large-tenant path (HNSW + full text side by side).
        by_text = {q.text: q.vector for q in queries}
        given = SimpleNamespace(key=model.key, embed_query=lambda t: by_text[t])
        knowledge = Knowledge(factory=rt.factory, embedder=given, writer=ExtractiveWriter(),  # type: ignore[arg-type]
                              threshold=0.35)
        indexed = dataclasses.replace(knowledge, exact_scan_max_chunks=0)
        hybrid_ms, indexed_ms, hnsw_ms, exact_ms, text_ms, recalls = [], [], [], [], [], []
        for q in queries:
            t0 = time.perf_counter()
            knowledge.search(q.text, tenant_id=q.tenant_id, top_k=5)
            hybrid_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            indexed.search(q.text, tenant_id=q.tenant_id, top_k=5)
            indexed_ms.append((time.perf_counter() - t0) * 1000)
            with tenant_scope(rt.factory, q.tenant_id) as session:
                t0 = time.perf_counter()
                approx = [cid for cid, _ in vector_candidates(session=session, query=q, n=10, method="hnsw")]
                hnsw_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                exact = [cid for cid, _ in vector_candidates(session=session, query=q, n=10, method="exact")]
                exact_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                text_candidates(session=session, query=q, n=20)
                text_ms.append((time.perf_counter() - t0) * 1000)
            recalls.append(len(set(approx) & set(exact)) / max(1, len(exact)))

        with tenant_scope(rt.factory, queries[0].tenant_id) as session:
            session.execute(text("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)"))
            vec = "[" + ",".join(f"{x:.7g}" for x in queries[0].vector) + "]"
            plan = session.execute(text(
                "EXPLAIN SELECT id FROM kb_chunks c WHERE c.tenant_id = :t AND c.embedding_model = 'local-minilm' "
                "ORDER BY (c.embedding::vector(384)) <=> CAST(:q AS vector(384)) LIMIT 40"),
                {"t": queries[0].tenant_id, "q": vec}).scalars().all()
        uses_hnsw = any("hnsw" in line for line in plan)

        # The real pipeline on real documents: parse, chunk, embed, write.
        pipeline = "restic docs not found"
        if RESTIC_DOCS.is_dir():
            files, _ = discover([RESTIC_DOCS])
            report = ingest_files(files, factory=rt.factory, embedder=model, tenant_id=tenants[0])
            pipeline = (f"{report.chunks_written / report.seconds:.1f} chunks/s "
                        f"({report.chunks_written} chunks of <= 900 chars, {report.seconds:.1f}s)")

        print(f"\nqueries: {len(queries)} top-5 hybrid, each for one tenant (~{args.chunks // args.tenants} chunks)")
        print(f"  hybrid, Knowledge.search (one pass over the tenant's rows, up to {EXACT_SCAN_MAX_CHUNKS} chunks): "
              f"p50 {statistics.median(hybrid_ms):.1f} ms  p95 {percentile(hybrid_ms, 95):.1f} ms  "
              f"max {max(hybrid_ms):.1f} ms")
        print(f"  hybrid, large-tenant path (HNSW + full text side by side): "
              f"p50 {statistics.median(indexed_ms):.1f} ms  "
              f"p95 {percentile(indexed_ms, 95):.1f} ms")
        print(f"  vector top 10 alone, HNSW (iterative scan):    p50 {statistics.median(hnsw_ms):.1f} ms  "
              f"p95 {percentile(hnsw_ms, 95):.1f} ms")
        print(f"  vector top 10 alone, exact scan of the tenant: p50 {statistics.median(exact_ms):.1f} ms  "
              f"p95 {percentile(exact_ms, 95):.1f} ms")
        print(f"  full-text top 20 alone (ts_rank):              p50 {statistics.median(text_ms):.1f} ms  "
              f"p95 {percentile(text_ms, 95):.1f} ms")
        print(f"  query embedding (local-minilm):                mean {embed_ms:.1f} ms")
        print(f"  forced-HNSW query plan uses the HNSW index: {uses_hnsw}")
        print(f"recall@10 of the HNSW index vs an exact scan: mean {statistics.fmean(recalls):.3f}, "
              f"min {min(recalls):.2f}")
        upkeep = "with HNSW and GIN upkeep" if args.incremental else f"GIN upkeep only{build}"
        print(f"ingest: database write {write_rate:.0f} chunks/s ({upkeep}; 0 = reused); "
              f"full pipeline (parse + embed + write): {pipeline}")
    finally:
        rt.close()
        pg.stop()
        if args.data_dir is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
