"""Draft writers: the extractive one invents nothing; LLM writers cite what they were given."""

from __future__ import annotations

import re
import uuid

import pytest
from llama_index.core.llms import MockLLM

from core.errors import ConfigurationError
from knowledge.drafts import ExtractiveWriter, LlmWriter, compose_draft, make_writer, render_prompt
from knowledge.retrieval import Hit

RESTORE = Hit(
    chunk_id=uuid.uuid4(), document_id=uuid.uuid4(), source="/kb/050_restore.rst",
    url="https://docs.test/restore.html", title="Restoring from backup",
    heading="Restoring from backup > Restoring from a snapshot",
    text=("Use either --exclude or --include to restrict the restore to a subset of files. "
          "For example, to restore a single file:\n\n"
          "    $ restic -r /srv/restic-repo restore 79766175 --target /tmp/restore --include /home/user/work/foo\n\n"
          "This will restore the file to /tmp/restore/home/user/work/foo."),
    score=0.03, similarity=0.71, text_rank=0.4,
)
FORGET = Hit(
    chunk_id=uuid.uuid4(), document_id=uuid.uuid4(), source="/kb/060_forget.rst", url=None,
    title="Removing backup snapshots", heading="Removing backup snapshots",
    text="All backup space is finite, so restic allows removing old snapshots. This can be done manually.",
    score=0.02, similarity=0.62, text_rank=None,
)
OFF_TOPIC = Hit(
    chunk_id=uuid.uuid4(), document_id=uuid.uuid4(), source="/kb/design.rst", url=None, title="Design",
    heading="Design > Locks", text="Locks are stored in the locks directory.", score=0.01, similarity=0.2,
    text_rank=None,
)
QUESTION = "How do I restore one single file from my backup?"


def sentences_of(text: str) -> set[str]:
    return {s.strip() for s in re.split(r"(?<=[.!?:])\s+", text) if s.strip()}


def test_no_passage_at_the_threshold_means_no_draft() -> None:
    assert compose_draft(QUESTION, [OFF_TOPIC], threshold=0.45) is None
    assert compose_draft(QUESTION, [], threshold=0.45) is None


def test_the_extractive_draft_quotes_only_passage_text_between_greeting_and_links() -> None:
    draft = compose_draft(QUESTION, [RESTORE, FORGET, OFF_TOPIC], threshold=0.45)
    assert draft is not None
    body = draft.text.split("Our documentation says:\n\n")[1].split("\n\nMore details:")[0]
    source_text = RESTORE.text + " " + FORGET.text
    assert all(part in source_text for part in body.split("\n\n"))
    assert draft.text.startswith("Hi,") and "https://docs.test/restore.html" in draft.text


def test_a_sentence_ending_in_a_colon_brings_its_command_example() -> None:
    draft = compose_draft(QUESTION, [RESTORE], threshold=0.45)
    assert draft is not None
    assert "to restore a single file:\n\n    $ restic -r /srv/restic-repo restore 79766175" in draft.text


def test_citations_confidence_and_passages_come_from_the_confident_hits_only() -> None:
    draft = compose_draft(QUESTION, [RESTORE, FORGET, OFF_TOPIC], threshold=0.45)
    assert draft is not None
    assert {c.source for c in draft.citations} <= {RESTORE.source, FORGET.source}
    assert draft.citations_json()[0] == {"title": "Restoring from backup", "source": "/kb/050_restore.rst",
                                         "heading": RESTORE.heading, "url": "https://docs.test/restore.html"}
    assert (draft.confidence, [p.source for p in draft.passages], draft.writer, draft.unverified) == (
        0.71, [RESTORE.source, FORGET.source], "extractive", False)


def test_passages_far_below_the_best_one_are_left_out() -> None:
    weak = Hit(**{**FORGET.__dict__, "chunk_id": uuid.uuid4(), "source": "/kb/weak.rst", "similarity": 0.5})
    draft = compose_draft(QUESTION, [RESTORE, weak], threshold=0.45)
    assert draft is not None and [p.source for p in draft.passages] == [RESTORE.source]


def test_console_output_is_left_out_of_a_quoted_command_example() -> None:
    text = "Restore a file like this:\n\n    $ restic restore latest\n    restoring..."
    hit = Hit(**{**RESTORE.__dict__, "text": text})
    draft = compose_draft("restore a file", [hit], threshold=0.45)
    assert draft is not None and "    $ restic restore latest" in draft.text and "restoring..." not in draft.text


def test_the_extractive_draft_is_deterministic() -> None:
    runs = {ExtractiveWriter().write(QUESTION, [FORGET, RESTORE], threshold=0.45).text for _ in range(3)}  # type: ignore[union-attr]
    assert len(runs) == 1


def test_an_llm_writer_is_given_only_confident_passages_and_marks_local_models_unverified() -> None:
    writer = LlmWriter(MockLLM(), name="ollama:test", unverified=True)
    draft = writer.write(QUESTION, [RESTORE, OFF_TOPIC], threshold=0.45)
    assert draft is not None
    assert (draft.unverified, draft.writer, [c.source for c in draft.citations]) == (True, "ollama:test",
                                                                                    [RESTORE.source])
    assert "Locks are stored" not in render_prompt(QUESTION, draft.passages)


def test_llm_writers_write_nothing_without_a_confident_passage() -> None:
    assert LlmWriter(MockLLM(), name="openai:x", unverified=False).write(QUESTION, [OFF_TOPIC], threshold=0.45) is None


def test_the_default_writer_needs_no_network_and_unknown_ones_are_refused() -> None:
    assert make_writer("extractive").name == "extractive"
    with pytest.raises(ConfigurationError):
        make_writer("gpt-42")
    with pytest.raises(ConfigurationError):
        make_writer("llamacpp")  # needs a model path
