"""Draft replies from retrieved passages.

The default writer (`extractive`) needs no network and invents nothing: a greeting, the
passages' sentences that best match the question (verbatim, with the command examples that
follow them), and links to the sources. LLM writers (OpenAI, Anthropic, Ollama, llama.cpp)
go through LlamaIndex's LLM classes, imported only when chosen by THREADLINE_LLM; what a small
local model writes is marked unverified. No passage at or above the threshold: no draft.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.errors import ConfigurationError, TemporaryFailure
from knowledge.chunking import is_code, split_sentences
from knowledge.retrieval import Hit

EXTRACTIVE = "extractive"
GREETING = "Hi,"
SIGN_OFF = "Best regards"
MAX_PASSAGES = 3
MAX_CODE_LINES = 8
PASSAGE_MARGIN = 0.15  # passages much less similar than the best one add noise, not answers


@dataclass(frozen=True)
class Citation:
    title: str
    source: str
    heading: str
    url: str | None

    def as_json(self) -> dict[str, str | None]:
        return {"title": self.title, "source": self.source, "heading": self.heading, "url": self.url}


@dataclass(frozen=True)
class DraftProposal:
    """What a draft writer proposes; the caller stores it (drafts table) and shows it."""

    text: str
    citations: tuple[Citation, ...]
    confidence: float  # best passage's cosine similarity to the question (0..1)
    passages: tuple[Hit, ...]  # what the text was built from, best first
    writer: str  # "extractive", "openai:gpt-4o-mini", ...
    unverified: bool = False  # True when a small local model wrote it: an agent must check it

    def citations_json(self) -> list[dict[str, str | None]]:
        return [c.as_json() for c in self.citations]


class DraftWriter(Protocol):
    @property
    def name(self) -> str: ...

    def write(self, question: str, hits: Sequence[Hit], *, threshold: float) -> DraftProposal | None: ...


def confident_passages(hits: Sequence[Hit], *, threshold: float) -> list[Hit]:
    """Hits whose similarity reaches the threshold and stays near the best one, best first."""
    ranked = sorted((h for h in hits if h.similarity >= threshold), key=lambda h: -h.similarity)
    return [h for h in ranked if h.similarity >= ranked[0].similarity - PASSAGE_MARGIN][:MAX_PASSAGES]


def citations_for(passages: Sequence[Hit]) -> tuple[Citation, ...]:
    seen: dict[tuple[str, str], Citation] = {}
    for h in passages:
        seen.setdefault((h.source, h.heading), Citation(h.title, h.source, h.heading, h.url))
    return tuple(seen.values())


# --------------------------------------------------------------------------- extractive

_WORD = re.compile(r"[a-z0-9][a-z0-9_.+-]*[a-z0-9]|[a-z0-9]")
_STOPWORDS = frozenset(
    """a about above after again all also am an and any are as at be been before being below between both but by
    can could did do does doing don down during each few for from further had has have having he her here hers how
    i if in into is it its itself just me more most my no nor not now of off on once only or other our out over own
    same she should so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your yours hi hello
    thanks thank please help need want get got use using way able know tell""".split()
)


def terms(text: str) -> list[str]:
    """Lower-cased content words with a light suffix strip (backups → backup, excluding → exclud)."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in _STOPWORDS:
            continue
        for suffix in ("ing", "es", "ed", "s"):
            if len(word) > len(suffix) + 3 and word.endswith(suffix):
                word = word[: -len(suffix)]
                break
        out.append(word)
    return out


@dataclass(frozen=True)
class _Candidate:
    passage: int
    position: int
    text: str
    code: str | None  # the command example that follows a sentence ending in ':'


def _candidates(passages: Sequence[Hit]) -> list[_Candidate]:
    out: list[_Candidate] = []
    for p, hit in enumerate(passages):
        paragraphs = hit.text.split("\n\n")
        position = 0
        for i, para in enumerate(paragraphs):
            if is_code(para):
                continue
            sentences = split_sentences(para)
            for j, sentence in enumerate(sentences):
                code = None
                last = j == len(sentences) - 1
                if last and sentence.endswith(":") and i + 1 < len(paragraphs) and is_code(paragraphs[i + 1]):
                    code = _commands(paragraphs[i + 1])
                out.append(_Candidate(p, position, sentence, code))
                position += 1
    return out


def _commands(code: str) -> str:
    """A console example's command lines (its output left out); other code as it is, capped."""
    lines = code.split("\n")
    commands = [line for line in lines if line.lstrip().startswith(("$ ", "# ", "PS>", "> "))]
    return "\n".join((commands or lines)[:MAX_CODE_LINES])


def _rank(question: str, candidates: Sequence[_Candidate], passages: Sequence[Hit]) -> list[tuple[float, _Candidate]]:
    q = set(terms(question))
    bags = [Counter(terms(c.text + " " + (c.code or ""))) for c in candidates]
    df = Counter(t for bag in bags for t in set(bag))
    n = len(candidates)
    scored = []
    for cand, bag in zip(candidates, bags, strict=True):
        overlap = sum(math.log(1 + n / df[t]) for t in q if t in bag)
        if overlap == 0 and not (cand.passage == 0 and cand.position == 0):
            continue  # a sentence sharing no word with the question is not quoted
        prior = passages[cand.passage].similarity + (0.3 if cand.position == 0 else 0.0)
        scored.append((overlap + prior, cand))
    # Deterministic: score, then the better passage, then the earlier sentence.
    return sorted(scored, key=lambda sc: (-sc[0], sc[1].passage, sc[1].position))


def _quote(cand: _Candidate) -> str:
    return cand.text + (f"\n\n{cand.code}" if cand.code else "")


def _label(c: Citation) -> str:
    section = c.heading.split(" > ")[-1] if c.heading else ""
    return f"{c.title} › {section}" if section and section != c.title else c.title


def compose_draft(
    question: str, hits: Sequence[Hit], *, threshold: float, max_sentences: int = 4
) -> DraftProposal | None:
    """The extractive draft: deterministic, offline, made only of the passages' own sentences."""
    passages = confident_passages(hits, threshold=threshold)
    if not passages:
        return None
    ranked = _rank(question, _candidates(passages), passages)
    chosen = sorted((c for _, c in ranked[:max_sentences]), key=lambda c: (c.passage, c.position))
    if not chosen:
        return None
    used = sorted({c.passage for c in chosen})
    cited = citations_for([passages[i] for i in used])
    body = "\n\n".join(_quote(c) for c in chosen)
    # Only real links go to the customer; a bare file path says nothing to them and shows our
    # server's layout (the agent still sees the paths on the draft card).
    links = "\n".join(f"- {_label(c)}: {c.url}" if c.url else f"- {_label(c)}" for c in cited)
    text = (f"{GREETING}\n\nThanks for reaching out. Our documentation says:\n\n{body}\n\n"
            f"More details:\n{links}\n\n{SIGN_OFF}")
    return DraftProposal(
        text=text, citations=cited, confidence=round(passages[0].similarity, 4),
        passages=tuple(passages), writer=EXTRACTIVE,
    )


class ExtractiveWriter:
    name = EXTRACTIVE

    def write(self, question: str, hits: Sequence[Hit], *, threshold: float) -> DraftProposal | None:
        return compose_draft(question, hits, threshold=threshold)


# --------------------------------------------------------------------------- LLM writers

PROMPT = """You are a support agent writing a reply to a customer.
Answer the customer's question using ONLY the numbered passages below. Quote commands exactly.
If the passages do not answer the question, say that you will check with the team; do not guess.
Cite passages as [1], [2]. Start with a short greeting; keep it under 180 words.

Customer question:
{question}

Passages:
{passages}

Reply:"""


def render_prompt(question: str, passages: Sequence[Hit]) -> str:
    blocks = [f"[{i}] {h.title} — {h.heading}\n{h.text}" for i, h in enumerate(passages, start=1)]
    return PROMPT.format(question=question.strip(), passages="\n\n".join(blocks))


class LlmWriter:
    """A LlamaIndex LLM (`llm.complete(prompt)`) writing from the confident passages only."""

    def __init__(self, llm: Any, *, name: str, unverified: bool) -> None:
        self.llm = llm
        self.name = name
        self.unverified = unverified

    def write(self, question: str, hits: Sequence[Hit], *, threshold: float) -> DraftProposal | None:
        passages = confident_passages(hits, threshold=threshold)
        if not passages:
            return None
        try:
            completion = self.llm.complete(render_prompt(question, passages))
        except Exception as exc:  # provider SDKs raise their own classes; the job retries on ours
            raise TemporaryFailure(f"draft writer {self.name} failed: {type(exc).__name__}: {exc}") from exc
        text = str(getattr(completion, "text", completion)).strip()
        if not text:
            raise TemporaryFailure(f"draft writer {self.name} returned no text")
        return DraftProposal(
            text=text, citations=citations_for(passages), confidence=round(passages[0].similarity, 4),
            passages=tuple(passages), writer=self.name, unverified=self.unverified,
        )


def _need(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(f"THREADLINE_LLM={extra} needs: pip install 'threadline[{extra}]'") from exc


def make_writer(spec: str) -> DraftWriter:
    """THREADLINE_LLM → a draft writer: extractive | openai[:M] | anthropic[:M] | ollama[:M] | llamacpp:PATH.gguf"""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == EXTRACTIVE and not arg:
        return ExtractiveWriter()
    if name == "openai":
        model = arg or "gpt-4o-mini"
        llm = _need("llama_index.llms.openai", "openai").OpenAI(model=model, temperature=0)
        return LlmWriter(llm, name=f"openai:{model}", unverified=False)
    if name == "anthropic":
        model = arg or "claude-haiku-4-5"
        llm = _need("llama_index.llms.anthropic", "anthropic").Anthropic(model=model, temperature=0)
        return LlmWriter(llm, name=f"anthropic:{model}", unverified=False)
    if name == "ollama":
        model = arg or "llama3.2"
        llm = _need("llama_index.llms.ollama", "ollama").Ollama(model=model, temperature=0, request_timeout=120.0)
        return LlmWriter(llm, name=f"ollama:{model}", unverified=True)
    if name == "llamacpp" and arg:
        llm = _need("llama_index.llms.llama_cpp", "llamacpp").LlamaCPP(
            model_path=arg, temperature=0.0, max_new_tokens=400, context_window=4096, verbose=False
        )
        return LlmWriter(llm, name=f"llamacpp:{arg.rsplit('/', 1)[-1]}", unverified=True)
    raise ConfigurationError(
        f"THREADLINE_LLM={spec!r} is not known: use extractive, openai[:MODEL], anthropic[:MODEL], "
        "ollama[:MODEL] or llamacpp:/path/model.gguf"
    )
