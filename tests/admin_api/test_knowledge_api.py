"""Knowledge over the API: upload, list, search, re-index, delete, eval and draft stats; hostile uploads refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from core.db.session import tenant_scope
from core.runtime import Runtime
from core.tenancy.models import ApiKeyScope
from core.tickets.models import Draft, DraftState
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

Headers = dict[str, str]
BACKUP_MD = b"""# Backing up

## Excluding files

Use --exclude to skip caches and temporary files when you run a backup of your home folder.

## Retention

Keep the last seven daily snapshots with the forget command and prune afterwards.
"""


def _upload(api: TestClient, key: Headers, name: str, data: bytes) -> object:
    return api.post("/api/v1/knowledge/documents", headers=key, files={"file": (name, data, "text/plain")})


def test_an_uploaded_document_is_listed_found_reindexed_and_deleted(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    added = _upload(api, key, "backup.md", BACKUP_MD)
    again = _upload(api, key, "backup.md", BACKUP_MD)
    doc = added.json()["document"]  # type: ignore[attr-defined]
    listed = api.get("/api/v1/knowledge/documents", headers=key).json()["items"]
    hits = api.get("/api/v1/knowledge/search", headers=key, params={"q": "how do I skip cache files?"}).json()
    reindexed = api.post(f"/api/v1/knowledge/documents/{doc['id']}/reindex", headers=key)
    deleted = api.delete(f"/api/v1/knowledge/documents/{doc['id']}", headers=key)
    after = api.get("/api/v1/knowledge/documents", headers=key).json()["items"]
    assert (added.status_code, added.json()["outcome"], doc["source"], doc["chunks"]) == (  # type: ignore[attr-defined]
        201, "added", "upload/backup.md", 2)
    assert again.json()["outcome"] == "unchanged"  # type: ignore[attr-defined]
    assert [d["id"] for d in listed] == [doc["id"]]
    assert hits[0]["document"] == "upload/backup.md" and "Excluding files" in hits[0]["heading"]
    assert (reindexed.status_code, reindexed.json()["outcome"]) == (200, "replaced")
    assert (deleted.status_code, after) == (204, [])


def test_binary_renamed_text_oversized_and_unknown_types_are_refused(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    pdf = _upload(api, key, "manual.md", b"%PDF-1.7\n...")
    exe = _upload(api, key, "setup.txt", b"MZ\x90\x00\x03")
    latin1 = _upload(api, key, "notes.txt", "caf\xe9".encode("latin-1"))
    docx = _upload(api, key, "guide.docx", b"hello")
    huge = _upload(api, key, "big.txt", b"a" * (5 * 1024 * 1024 + 1))
    codes = [r.status_code for r in (pdf, exe, latin1, docx, huge)]  # type: ignore[attr-defined]
    assert codes == [422, 422, 422, 422, 413]
    assert api.get("/api/v1/knowledge/documents", headers=key).json()["items"] == []


def test_html_is_parsed_into_text_with_scripts_dropped(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    page = b"<html><head><script>alert(1)</script></head><body><h1>Restore</h1><p>Use the restore command " \
           b"to get files back.</p><script>document.cookie</script></body></html>"
    assert _upload(api, key, "restore.html", page).status_code == 201  # type: ignore[attr-defined]
    hits = api.get("/api/v1/knowledge/search", headers=key, params={"q": "restore files"}).json()
    assert hits and all("alert" not in h["text"] and "cookie" not in h["text"] for h in hits)


def test_eval_answers_hit_rates_and_mrr_and_a_bad_line_is_a_422(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    _upload(api, key, "backup.md", BACKUP_MD)
    cases = "\n".join(json.dumps(c) for c in [{"q": "keep seven daily snapshots", "doc": "backup.md"},
                                              {"q": "exclude temporary files", "doc": "backup.md"}])
    good = api.post("/api/v1/knowledge/eval", headers=key, params={"baseline": "false"},
                    files={"file": ("cases.jsonl", cases.encode(), "application/jsonl")})
    bad = api.post("/api/v1/knowledge/eval", headers=key, files={"file": ("cases.jsonl", b"{\"q\": 1}\n", "x/y")})
    hybrid = good.json()[0]
    assert (good.status_code, hybrid["name"].split()[0], hybrid["cases"], hybrid["hit@1"], hybrid["mrr"]) == (
        200, "hybrid", 2, 1.0, 1.0)
    assert bad.status_code == 422 and "cases.jsonl:1" in bad.json()["detail"]


def test_draft_stats_count_each_fate_per_week(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, _ = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    monday = datetime(2025, 3, 3, 9, tzinfo=UTC)
    fates = [(DraftState.SENT, 0), (DraftState.SENT, 1), (DraftState.EDITED, 2), (DraftState.DISCARDED, 8),
             (DraftState.STALE, 9)]
    with tenant_scope(runtime.factory, tenant.id) as session:
        for state, day in fates:
            session.add(Draft(id=uuid.uuid4(), tenant_id=tenant.id, ticket_id=ticket_id, text="t", citations=[],
                              confidence=0.9, state=state, created_at=monday + timedelta(days=day)))
    weeks = api.get("/api/v1/knowledge/draft-stats", headers=key_for(tenant.id, ApiKeyScope.READ)).json()
    assert [(w["week"], w["sent_as_is"], w["edited"], w["discarded"], w["stale"]) for w in weeks] == [
        ("2025-03-03", 2, 1, 0, 0), ("2025-03-10", 0, 0, 1, 1)]
