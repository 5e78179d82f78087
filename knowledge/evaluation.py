"""Retrieval evaluation: hit@k and MRR over {"q": ..., "doc": ...} lines, and a BM25 baseline.

A case's `doc` names the document that answers it: a file name (`040_backup.rst`), a path
suffix or the full source; a list means any of them counts. Rankings are of documents: the
distinct documents of the retrieved passages, in the order of their best passage.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core.db.session import tenant_scope
from core.errors import InvalidInput
from knowledge.drafts import terms
from knowledge.embeddings import Embedder
from knowledge.models import KbChunk, KbDocument
from knowledge.retrieval import SearchQuery, documents_in_order, hybrid_search, text_candidates, vector_candidates

KS = (1, 3, 5)
MRR_DEPTH = 10


@dataclass(frozen=True)
class EvalCase:
    q: str
    docs: tuple[str, ...]


def load_cases(path: Path) -> list[EvalCase]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
            docs = obj["doc"] if isinstance(obj["doc"], list) else [obj["doc"]]
            cases.append(EvalCase(str(obj["q"]), tuple(str(d) for d in docs)))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise InvalidInput(f"{path}:{n}: expected {{\"q\": ..., \"doc\": ...}} ({exc})") from exc
    if not cases:
        raise InvalidInput(f"{path}: no cases")
    return cases


def matches(source: str, doc: str) -> bool:
    return source == doc or source.endswith("/" + doc.lstrip("/"))


@dataclass
class EvalResult:
    name: str
    cases: int = 0
    hits: Counter[int] = field(default_factory=Counter)
    reciprocal_ranks: float = 0.0
    ranks: list[tuple[str, int | None, list[str]]] = field(default_factory=list)  # (question, rank, top 3)

    def hit_at(self, k: int) -> float:
        return self.hits[k] / self.cases if self.cases else 0.0

    @property
    def mrr(self) -> float:
        return self.reciprocal_ranks / self.cases if self.cases else 0.0

    def as_json(self) -> dict[str, object]:
        return {"name": self.name, "cases": self.cases, **{f"hit@{k}": round(self.hit_at(k), 4) for k in KS},
                "mrr": round(self.mrr, 4)}

    def line(self) -> str:
        figures = "  ".join(f"hit@{k} {self.hit_at(k):.3f}" for k in KS)
        return f"{self.name:<22} {figures}  MRR {self.mrr:.3f}  ({self.cases} questions)"


def evaluate(cases: Sequence[EvalCase], rank: Callable[[str], list[str]], *, name: str) -> EvalResult:
    """`rank(question)` returns document sources, best first."""
    result = EvalResult(name)
    for case in cases:
        ranked = rank(case.q)[:MRR_DEPTH]
        first = next((i for i, src in enumerate(ranked, start=1) if any(matches(src, d) for d in case.docs)), None)
        result.cases += 1
        for k in KS:
            result.hits[k] += first is not None and first <= k
        result.ranks.append((case.q, first, ranked[:3]))
        if first is not None:
            result.reciprocal_ranks += 1 / first
    return result


class Bm25:
    """Okapi BM25 (k1 = 1.2, b = 0.75) over whole documents: the plain lexical baseline."""

    def __init__(self, documents: dict[str, str], *, k1: float = 1.2, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.names = list(documents)
        self.bags = [Counter(terms(text)) for text in documents.values()]
        self.lengths = [sum(bag.values()) for bag in self.bags]
        self.avg = sum(self.lengths) / len(self.lengths) if self.lengths else 0.0
        df = Counter(t for bag in self.bags for t in bag)
        n = len(self.bags)
        self.idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}

    def scores(self, query: str) -> list[float]:
        q = terms(query)
        out = []
        for bag, length in zip(self.bags, self.lengths, strict=True):
            norm = self.k1 * (1 - self.b + self.b * length / (self.avg or 1))
            out.append(sum(self.idf.get(t, 0.0) * bag[t] * (self.k1 + 1) / (bag[t] + norm) for t in q if t in bag))
        return out

    def rank(self, query: str) -> list[str]:
        scored = sorted(zip(self.scores(query), range(len(self.names)), strict=True), key=lambda s: (-s[0], s[1]))
        return [self.names[i] for score, i in scored if score > 0]


def documents_text(rows: Iterable[tuple[str, str, str, str]]) -> dict[str, str]:
    """(source, title, heading, text) chunk rows → one text per document, in chunk order."""
    out: dict[str, list[str]] = {}
    last: dict[str, str] = {}
    for source, title, heading, text in rows:
        parts = out.setdefault(source, [title])
        if heading != last.get(source):  # each heading once, as in the document itself
            parts.append(heading.rsplit(" > ", 1)[-1])
            last[source] = heading
        parts.append(text)
    return {source: "\n".join(parts) for source, parts in out.items()}


def run_eval(
    cases: Sequence[EvalCase], *, factory: sessionmaker[Session], embedder: Embedder, tenant_id: uuid.UUID,
    baseline: bool = True, depth: int = 30,
) -> list[EvalResult]:
    """Hybrid retrieval, its two halves alone, and (optionally) BM25 over the same documents."""

    def ranker(mode: str) -> Callable[[str], list[str]]:
        def rank(question: str) -> list[str]:
            query = SearchQuery(question, embedder.embed_query(question), embedder.key, tenant_id)
            with tenant_scope(factory, tenant_id) as session:
                if mode == "hybrid":
                    # The candidate depths drafts use: deeper lists change what RRF puts first.
                    hits = hybrid_search(session=session, query=query, top_k=depth)
                    return documents_in_order(hits)
                ids = ([cid for cid, _ in vector_candidates(session=session, query=query, n=depth)] if mode == "vector"
                       else [cid for cid, _ in text_candidates(session=session, query=query, n=depth)])
                sources = dict(session.execute(
                    select(KbChunk.id, KbDocument.source).join(KbDocument, KbDocument.id == KbChunk.document_id)
                    .where(KbChunk.tenant_id == tenant_id, KbChunk.id.in_(ids))
                ).tuples().all())
                return list(dict.fromkeys(sources[i] for i in ids if i in sources))

        return rank

    results = [evaluate(cases, ranker(m), name=f"{m} ({embedder.key})" if m != "text" else "full text (ts_rank)")
               for m in ("hybrid", "vector", "text")]
    if baseline:
        with tenant_scope(factory, tenant_id) as session:
            rows = session.execute(
                select(KbDocument.source, KbDocument.title, KbChunk.heading, KbChunk.text)
                .join(KbChunk, KbChunk.document_id == KbDocument.id)
                .where(KbDocument.tenant_id == tenant_id, KbChunk.embedding_model == embedder.key)
                .order_by(KbDocument.source, KbChunk.ordinal)
            ).tuples().all()
        bm25 = Bm25(documents_text(rows))
        results.append(evaluate(cases, bm25.rank, name="BM25 (whole documents)"))
    return results
