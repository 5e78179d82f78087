"""Tickets through the admin API over the real database: filters, search, pages, writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db.session import tenant_scope
from core.jobs.models import OutboxRow
from core.runtime import Runtime
from core.tenancy.models import ApiKeyScope, AuditEntry
from core.tenancy.service import create_inbox
from core.tickets.models import DeliveryState, Direction, Message
from inbound.email.outbound_plugin import DELIVER_JOB
from tests.admin_api.conftest import Headers
from tests.conftest import make_tenant
from tests.core.factories import make_ticket

T = "/api/v1/tickets"


def _numbers(res_json: dict[str, object]) -> list[int]:
    return [t["number"] for t in res_json["items"]]  # type: ignore[attr-defined, index]


def test_filters_combine_status_inbox_tag_and_contact(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    with tenant_scope(runtime.factory, tenant.id) as session:
        other = create_inbox(session=session, tenant_id=tenant.id, address=f"sales-{uuid.uuid4().hex[:6]}@example.test")
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, customer="ann@example.test")
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, customer="bob@example.test")
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=other.id, customer="ann@example.test")
    headers = key_for(tenant.id)
    assert api.patch(f"{T}/2", headers=headers, json={"status": "pending", "tags": ["vip"]}).status_code == 200
    assert api.patch(f"{T}/3", headers=headers, json={"status": "pending", "tags": ["vip"]}).status_code == 200

    res = api.get(T, headers=headers, params={"status": "pending", "inbox_id": str(inbox.id), "tag": "vip"})
    assert _numbers(res.json()) == [2]
    assert _numbers(api.get(T, headers=headers, params={"contact": "ANN@example.test"}).json()) == [3, 1]
    assert _numbers(api.get(T, headers=headers, params={"status": ["new", "pending"]}).json()) == [3, 2, 1]


def test_full_text_search_finds_a_word_from_a_message_body_and_the_subject(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Printer jammed")
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id, subject="Invoice question")
    headers = key_for(tenant.id)
    api.post(f"{T}/2/notes", headers=headers, json={"text": "customer mentions the flux capacitor"})
    assert _numbers(api.get(T, headers=headers, params={"q": "capacitor"}).json()) == [2]
    assert _numbers(api.get(T, headers=headers, params={"q": "printer"}).json()) == [1]
    assert _numbers(api.get(T, headers=headers, params={"q": "backup"}).json()) == [2, 1]  # both first messages


def test_cursor_pages_cover_every_ticket_exactly_once(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    for _ in range(7):
        make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    headers, seen, cursor = key_for(tenant.id), [], None
    while True:
        res = api.get(T, headers=headers, params={"limit": 3, **({"cursor": cursor} if cursor else {})})
        seen += _numbers(res.json())
        cursor = res.json()["next_cursor"]
        if cursor is None:
            break
        assert 'rel="next"' in res.headers["link"]
    assert seen == [7, 6, 5, 4, 3, 2, 1]


def test_a_reply_from_the_api_is_one_pending_outbound_mail_with_the_delivery_job_queued(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    ticket_id, number = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    res = api.post(f"{T}/{number}/replies", headers=key_for(tenant.id), json={"text": "Fixed now."})
    assert (res.status_code, res.json()["direction"], res.json()["delivery_state"]) == (201, "outbound", "pending")
    with tenant_scope(runtime.factory, tenant.id) as session:
        outbound = session.execute(select(Message).where(Message.ticket_id == ticket_id,
                                                         Message.direction == Direction.OUTBOUND)).scalars().all()
        jobs = session.execute(select(OutboxRow.payload).where(OutboxRow.job == DELIVER_JOB)).scalars().all()
    assert [(m.delivery_state, m.body_text) for m in outbound] == [(DeliveryState.PENDING, "Fixed now.")]
    assert [j["message_id"] for j in jobs] == [str(outbound[0].id)]


def test_a_note_is_recorded_and_never_mailed(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    _, number = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    res = api.post(f"{T}/{number}/notes", headers=key_for(tenant.id), json={"text": "called them"})
    with tenant_scope(runtime.factory, tenant.id) as session:
        mails = session.execute(select(OutboxRow.id).where(OutboxRow.job == DELIVER_JOB)).all()
    assert (res.status_code, res.json()["direction"], res.json()["delivery_state"], mails) == (201, "note", "n/a", [])


def test_patch_with_a_stale_if_match_is_412_and_every_write_is_audited(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    headers = key_for(tenant.id)
    etag = api.get(f"{T}/1", headers=headers).headers["etag"]
    first = api.patch(f"{T}/1", headers={**headers, "If-Match": etag}, json={"priority": "high"})
    stale = api.patch(f"{T}/1", headers={**headers, "If-Match": etag}, json={"priority": "low"})
    with tenant_scope(runtime.factory, tenant.id) as session:
        actions = session.execute(select(AuditEntry.action, AuditEntry.target)
                                  .where(AuditEntry.action.startswith("ticket."))).all()
    assert (first.status_code, stale.status_code) == (200, 412)
    assert [tuple(a) for a in actions] == [("ticket.updated", "ticket:1")]


def test_merge_moves_the_messages_closes_the_source_and_both_timelines_say_so(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    headers = key_for(tenant.id)
    res = api.post(f"{T}/2/merge", headers=headers, json={"into": 1})
    source = api.get(f"{T}/2", headers=headers).json()
    target = res.json()
    assert (res.status_code, source["status"], source["linked_ticket_id"]) == (200, "closed", target["id"])
    assert [m["direction"] for m in target["messages"]] == ["inbound", "inbound", "note"]
    assert "ticket.merged_into" in [e["kind"] for e in source["timeline"]]
    assert "ticket.merged_from" in [e["kind"] for e in target["timeline"]]
    assert api.post(f"{T}/2/merge", headers=headers, json={"into": 1}).status_code == 409


def test_split_moves_one_message_into_a_new_linked_ticket(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    headers = key_for(tenant.id)
    note = api.post(f"{T}/1/notes", headers=headers, json={"text": "a different problem"}).json()
    res = api.post(f"{T}/1/messages/{note['id']}/split", headers=headers)
    new, old = res.json(), api.get(f"{T}/1", headers=headers).json()
    assert (res.status_code, new["number"], res.headers["location"]) == (201, 2, f"{T}/2")
    assert [m["body_text"] for m in new["messages"]][0] == "a different problem"
    assert note["id"] not in [m["id"] for m in old["messages"]]
    assert ("ticket.split" in [e["kind"] for e in old["timeline"]],
            "ticket.split_from" in [e["kind"] for e in new["timeline"]]) == (True, True)


def test_a_read_key_cannot_write(api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]) -> None:
    tenant, inbox = make_tenant(runtime)
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    res = api.post(f"{T}/1/notes", headers=key_for(tenant.id, ApiKeyScope.READ), json={"text": "x"})
    assert res.status_code == 403


def test_tenant_a_cannot_see_or_change_tenant_bs_ticket(
    api: TestClient, runtime: Runtime, key_for: Callable[..., Headers]
) -> None:
    a, _ = make_tenant(runtime)
    b, inbox_b = make_tenant(runtime)
    make_ticket(runtime, tenant_id=b.id, inbox_id=inbox_b.id)
    headers = key_for(a.id)
    answers = [api.get(f"{T}/1", headers=headers).status_code,
               api.patch(f"{T}/1", headers=headers, json={"status": "open"}).status_code,
               api.get(T, headers=headers, params={"q": "backup"}).json()["items"]]
    assert answers == [404, 404, []]
