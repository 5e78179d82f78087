"""The evaluation set over the restic docs: hybrid retrieval beside a BM25 ranking, same run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidInput
from knowledge.evaluation import Bm25, EvalCase, evaluate, load_cases, run_eval
from tests.knowledge.conftest import EVAL_SET, ResticKb


def test_the_eval_set_has_at_least_30_questions_each_naming_an_existing_document(restic_kb: ResticKb) -> None:
    cases = load_cases(EVAL_SET)
    names = {Path(d.source).name for d in restic_kb.knowledge.documents(tenant_id=restic_kb.tenant_id)}
    assert len(cases) >= 30
    assert [d for c in cases for d in c.docs if d not in names] == []


def test_hybrid_retrieval_figures_beside_bm25(restic_kb: ResticKb) -> None:
    results = run_eval(load_cases(EVAL_SET), factory=restic_kb.rt.factory, embedder=restic_kb.knowledge.embedder,
                       tenant_id=restic_kb.tenant_id)
    print("\n" + "\n".join(r.line() for r in results))
    by_name = {r.name.split(" ")[0]: r for r in results}
    assert by_name["hybrid"].hit_at(5) >= 0.85
    assert by_name["hybrid"].mrr > by_name["BM25"].mrr


def test_hit_at_k_and_mrr_arithmetic() -> None:
    cases = [EvalCase("a", ("x.md",)), EvalCase("b", ("y.md",)), EvalCase("c", ("z.md",))]
    ranking = {"a": ["/d/x.md"], "b": ["/d/q.md", "/d/r.md", "/d/y.md"], "c": ["/d/q.md"]}
    result = evaluate(cases, lambda q: ranking[q], name="t")
    assert (result.hit_at(1), result.hit_at(3), result.mrr) == pytest.approx((1 / 3, 2 / 3, (1 + 1 / 3) / 3))


def test_bm25_prefers_the_document_with_the_rare_term() -> None:
    bm25 = Bm25({"a": "backup backup backup repository", "b": "backup prune snapshots", "c": "restore files"})
    assert bm25.rank("how do I prune") == ["b"]


def test_a_malformed_line_is_refused_with_its_line_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"q": "fine", "doc": "a.md"}) + "\n{\"question\": 1}\n")
    with pytest.raises(InvalidInput, match="bad.jsonl:2"):
        load_cases(path)
