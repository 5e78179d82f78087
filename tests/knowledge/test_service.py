"""Knowledge.draft_for on the real KB: drafts cite what they used; off-topic questions get none."""

from __future__ import annotations

from pathlib import Path

from tests.knowledge.conftest import ResticKb


def test_a_kb_question_gets_a_draft_citing_the_right_document(restic_kb: ResticKb) -> None:
    draft = restic_kb.knowledge.draft_for("How do I change my repository password?", tenant_id=restic_kb.tenant_id)
    assert draft is not None
    print(f"\n--- draft (confidence {draft.confidence}) ---\n{draft.text}")
    assert Path(draft.citations[0].source).name == "070_encryption.rst"
    assert draft.confidence >= restic_kb.knowledge.threshold and draft.passages


def test_an_off_topic_question_gets_no_draft_and_its_confidence_is_kept(restic_kb: ResticKb) -> None:
    answer = restic_kb.knowledge.answer("Can I get a refund for my annual subscription?", tenant_id=restic_kb.tenant_id)
    assert answer.draft is None
    assert 0 < answer.confidence < restic_kb.knowledge.threshold and answer.hits
