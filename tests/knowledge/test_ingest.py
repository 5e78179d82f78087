"""Ingest on the real Postgres: unchanged skipped, changed replaced, removed deletable."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.session import tenant_scope
from core.runtime import Runtime
from knowledge.embeddings import LocalMiniLM
from knowledge.ingest import Outcome, discover, missing_sources, title_from_name
from knowledge.models import KbChunk, KbDocument
from tests.knowledge.conftest import RESTIC_DOCS, ResticKb, knowledge_for, new_tenant


def chunk_ids(rt: Runtime, tenant_id: uuid.UUID) -> dict[uuid.UUID, str]:
    with tenant_scope(rt.factory, tenant_id) as session:
        return dict(session.execute(select(KbChunk.id, KbChunk.text)).tuples().all())


def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "billing.md").write_text("# Billing\n\nInvoices are sent on the first day of each month.\n")
    (folder / "widget.html").write_text("<h1>Widget</h1><p>Paste the script tag before the closing body tag.</p>")
    (folder / "notes.txt").write_text("Opening hours\n\nWe answer mail from 9 to 17 on weekdays.\n")
    (folder / "image.png").write_bytes(b"\x89PNG")
    return folder


def test_reingesting_the_unchanged_restic_folder_changes_nothing(restic_kb: ResticKb) -> None:
    before = chunk_ids(restic_kb.rt, restic_kb.tenant_id)
    files, _ = discover([RESTIC_DOCS])
    report = restic_kb.knowledge.ingest(files, tenant_id=restic_kb.tenant_id)
    assert (report.count(Outcome.UNCHANGED), report.chunks_written) == (len(files), 0)
    assert chunk_ids(restic_kb.rt, restic_kb.tenant_id) == before


def test_the_restic_docs_all_ingested_with_titles_and_heading_paths(restic_kb: ResticKb) -> None:
    with tenant_scope(restic_kb.rt.factory, restic_kb.tenant_id) as session:
        titles = dict(session.execute(select(KbDocument.source, KbDocument.title)).tuples().all())
        headings = set(session.execute(select(KbChunk.heading)).scalars().all())
    assert restic_kb.report.count(Outcome.ADDED) == len(titles) == 23
    assert titles[str((RESTIC_DOCS / "040_backup.rst").resolve())] == "Backing up"
    assert "Backing up > Excluding files" in headings


def test_a_changed_file_replaces_its_chunks_and_keeps_its_document_id(
    kb_runtime: Runtime, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    tenant_id, _ = new_tenant(kb_runtime)
    knowledge = knowledge_for(kb_runtime, embedder)
    folder = docs(tmp_path)
    first = knowledge.ingest(discover([folder])[0], tenant_id=tenant_id)
    doc_ids = {d.source: d.id for d in knowledge.documents(tenant_id=tenant_id)}
    old_chunks = chunk_ids(kb_runtime, tenant_id)
    (folder / "billing.md").write_text("# Billing\n\nInvoices are now sent on the fifteenth of each month.\n")
    second = knowledge.ingest(discover([folder])[0], tenant_id=tenant_id)
    new_chunks = chunk_ids(kb_runtime, tenant_id)
    assert (first.count(Outcome.ADDED), second.count(Outcome.REPLACED), second.count(Outcome.UNCHANGED)) == (3, 1, 2)
    assert {d.source: d.id for d in knowledge.documents(tenant_id=tenant_id)} == doc_ids
    gone = set(old_chunks) - set(new_chunks)
    assert [old_chunks[c] for c in gone] == ["Invoices are sent on the first day of each month."]
    assert "Invoices are now sent on the fifteenth of each month." in new_chunks.values()


def test_removed_files_are_found_and_deleted_with_their_chunks(
    kb_runtime: Runtime, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    tenant_id, _ = new_tenant(kb_runtime)
    knowledge = knowledge_for(kb_runtime, embedder)
    folder = docs(tmp_path)
    knowledge.ingest(discover([folder])[0], tenant_id=tenant_id)
    (folder / "notes.txt").unlink()
    with tenant_scope(kb_runtime.factory, tenant_id) as session:
        gone = missing_sources(session=session, tenant_id=tenant_id, under=[folder.resolve().as_posix()])
    deleted = knowledge.delete(tenant_id=tenant_id, sources=gone)
    assert deleted == [(folder / "notes.txt").resolve().as_posix()]
    assert [Path(d.source).name for d in knowledge.documents(tenant_id=tenant_id)] == ["billing.md", "widget.html"]
    assert "We answer mail from 9 to 17 on weekdays." not in chunk_ids(kb_runtime, tenant_id).values()


def test_discover_takes_supported_files_and_refuses_named_unsupported_ones(tmp_path: Path) -> None:
    folder = docs(tmp_path)
    (folder / ".hidden").mkdir()
    (folder / ".hidden" / "x.md").write_text("# hidden")
    files, refused = discover([folder, folder / "image.png", tmp_path / "missing.md"])
    assert sorted(f.name for f in files) == ["billing.md", "notes.txt", "widget.html"]
    assert [(Path(r.source).name, r.error) for r in refused] == [
        ("image.png", "not Markdown, reStructuredText, HTML or plain text"), ("missing.md", "no such file")]


def test_a_folder_copy_is_a_different_document_set_for_the_same_tenant(
    kb_runtime: Runtime, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    """Sources are absolute paths: the same file content at two places is stored twice."""
    tenant_id, _ = new_tenant(kb_runtime)
    knowledge = knowledge_for(kb_runtime, embedder)
    folder = docs(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    report = knowledge.ingest(discover([folder, copy])[0], tenant_id=tenant_id)
    assert report.count(Outcome.ADDED) == 6


@pytest.mark.parametrize(("name", "title"), [("040_backup.rst", "Backup"), ("getting-started.md", "Getting started"),
                                             ("faq.txt", "Faq")])
def test_title_from_file_name(name: str, title: str) -> None:
    assert title_from_name(name) == title
