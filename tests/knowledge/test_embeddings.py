"""The default embedding model loads from installed packages alone and embeds sensibly."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from core.errors import ConfigurationError
from knowledge.embeddings import LocalMiniLM, make_embedder


def test_the_local_model_loads_and_embeds_with_the_network_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kw: object) -> None:
        raise OSError("network use during model load")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    started = time.perf_counter()
    model = LocalMiniLM().load()
    vector = model.embed_query("How do I restore a file?")
    print(f"\nlocal-minilm load {model.load_seconds:.2f}s, first query {time.perf_counter() - started:.2f}s")
    assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(embedder: LocalMiniLM) -> None:
    q, para, other = embedder.embed_documents(
        ["How can I get back a deleted file?", "Restoring a file from a backup snapshot", "Our office opens at nine"]
    )
    assert float(q @ para) > float(q @ other) + 0.2


def test_batched_vectors_equal_one_at_a_time(embedder: LocalMiniLM) -> None:
    texts = ["short", "a much longer sentence about backups, repositories and snapshots " * 3, "medium length text"]
    batched = embedder.embed_documents(texts)
    single = np.stack([embedder.embed_query(t) for t in texts])
    assert float(np.min(np.sum(batched * single, axis=1))) > 0.9999


def test_the_embedding_setting_names_known_providers_only() -> None:
    assert make_embedder("local-minilm").key == "local-minilm"
    with pytest.raises(ConfigurationError):
        make_embedder("word2vec")
