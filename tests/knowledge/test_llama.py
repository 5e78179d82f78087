"""LlamaIndex's interfaces over our tenant-walled tables: index, retrievers, add and delete."""

from __future__ import annotations

import uuid
from pathlib import Path

from llama_index.core import VectorStoreIndex
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

from knowledge.embeddings import LocalMiniLM
from knowledge.llama import EmbedderAdapter, KbRetriever, TenantVectorStore
from tests.knowledge.conftest import ResticKb, new_tenant


def index_for(kb: ResticKb, tenant_id: uuid.UUID, embedder: LocalMiniLM) -> VectorStoreIndex:
    store = TenantVectorStore(factory=kb.rt.factory, tenant_id=tenant_id, model_key=embedder.key)
    return VectorStoreIndex.from_vector_store(store, embed_model=EmbedderAdapter(embedder))


def test_a_llamaindex_retriever_finds_the_restic_answer_in_vector_and_hybrid_modes(
    restic_kb: ResticKb, embedder: LocalMiniLM
) -> None:
    index = index_for(restic_kb, restic_kb.tenant_id, embedder)
    question = "How do I change the password of my repository?"
    vector = index.as_retriever(similarity_top_k=3).retrieve(question)
    hybrid = index.as_retriever(similarity_top_k=3, vector_store_query_mode="hybrid").retrieve(question)
    assert "070_encryption.rst" in {Path(n.node.metadata["source"]).name for n in vector}
    assert "070_encryption.rst" in {Path(n.node.metadata["source"]).name for n in hybrid}


def test_nodes_added_through_the_store_are_searchable_by_that_tenant_only_and_deletable(
    restic_kb: ResticKb, embedder: LocalMiniLM
) -> None:
    tenant_id, _ = new_tenant(restic_kb.rt)
    adapter = EmbedderAdapter(embedder)
    node = TextNode(text="Refunds for annual plans are paid back within 30 days.", metadata={"title": "Refunds"},
                    relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="kb://refunds")})
    node.embedding = adapter.get_text_embedding(node.text)
    store = TenantVectorStore(factory=restic_kb.rt.factory, tenant_id=tenant_id, model_key=embedder.key)
    store.add([node])
    mine = index_for(restic_kb, tenant_id, embedder).as_retriever(similarity_top_k=5).retrieve("refund annual plan")
    theirs = index_for(restic_kb, restic_kb.tenant_id, embedder).as_retriever(similarity_top_k=50).retrieve(
        "refund annual plan")
    store.delete("kb://refunds")
    after = index_for(restic_kb, tenant_id, embedder).as_retriever(similarity_top_k=5).retrieve("refund annual plan")
    assert [n.node.metadata["source"] for n in mine] == ["kb://refunds"]
    assert "kb://refunds" not in {n.node.metadata["source"] for n in theirs}
    assert after == []


def test_the_kb_retriever_returns_fused_hits_as_scored_nodes(restic_kb: ResticKb) -> None:
    retriever = KbRetriever(restic_kb.knowledge, tenant_id=restic_kb.tenant_id, top_k=2)
    nodes = retriever.retrieve("exclude a folder from the backup")
    assert len(nodes) == 2 and Path(nodes[0].node.metadata["source"]).name == "040_backup.rst"
    assert nodes[0].score is not None and nodes[0].score >= (nodes[1].score or 0)
