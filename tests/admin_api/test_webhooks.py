"""Webhooks: subscriptions over the API, signed deliveries retried through the outbox, the target rules."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db.session import tenant_scope
from core.runtime import Runtime
from core.settings import Settings
from core.tenancy.models import ApiKeyScope
from core.webhooks import service
from core.webhooks.delivery import DELIVER_JOB
from core.webhooks.models import WebhookSubscription
from core.webhooks.service import AttemptResult
from core.webhooks.signing import sign, verify
from core.webhooks.targets import TargetRefused, check_url, resolve
from tests.conftest import make_tenant
from tests.core.factories import make_ticket
from tests.support.jobs import drain_jobs

Headers = dict[str, str]


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    # The receiver below listens on loopback, which production refuses.
    return Settings(THREADLINE_DATA_DIR=tmp_path, THREADLINE_JOB_MIN_BACKOFF_MS=10, THREADLINE_JOB_MAX_RETRIES=3,
                    THREADLINE_WEBHOOK_ALLOW_PRIVATE=True)


class Receiver:
    """An HTTP server that checks each signature and answers from a script of status codes."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.secret = ""
        self.seen: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.seen.append({
                    "valid": verify(receiver.secret, self.headers["Threadline-Signature"], body),
                    "event": self.headers["Threadline-Event"], "body": json.loads(body),
                })
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture()
def receiver() -> Iterator[Callable[[list[int]], Receiver]]:
    started: list[Receiver] = []

    def start(statuses: list[int]) -> Receiver:
        r = Receiver(statuses)
        threading.Thread(target=r.server.serve_forever, daemon=True).start()
        started.append(r)
        return r

    yield start
    for r in started:
        r.server.shutdown()
        r.server.server_close()


def _subscribe(api: TestClient, key: Headers, url: str, events: list[str] | None = None) -> dict[str, Any]:
    answer = api.post("/api/v1/webhooks", headers=key, json={"url": url, "events": events or ["ticket.opened"]})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _deliveries(api: TestClient, key: Headers, webhook_id: str) -> list[dict[str, Any]]:
    return list(api.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=key).json()["items"])


def test_a_receiver_that_fails_once_gets_the_event_again_signed_and_both_attempts_are_logged(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers], receiver: Callable[[list[int]], Receiver],
) -> None:
    tenant, inbox = make_tenant(runtime)
    key = key_for(tenant.id)
    hook = receiver([500])
    sub = _subscribe(api, key, hook.url)
    hook.secret = sub["secret"]
    ticket_id, number = make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    for _ in range(4):
        drain_jobs(runtime, only={DELIVER_JOB}, include_delayed=True)
    log = _deliveries(api, key, sub["id"])
    assert [(d["attempt"], d["status_code"], d["delivered"]) for d in reversed(log)] == [
        (1, 500, False), (2, 200, True)]
    assert [s["valid"] for s in hook.seen] == [True, True]
    first, second = (s["body"] for s in hook.seen)
    assert first == second  # same bytes on a retry: receivers dedupe on `id`
    assert (first["type"], first["data"]["ticket_id"], first["data"]["number"]) == (
        "ticket.opened", str(ticket_id), number)
    assert api.get(f"/api/v1/webhooks/{sub['id']}", headers=key).json()["consecutive_failures"] == 0


def test_only_subscribed_kinds_of_the_own_tenant_are_delivered(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers], receiver: Callable[[list[int]], Receiver],
) -> None:
    tenant, inbox = make_tenant(runtime)
    other, other_inbox = make_tenant(runtime)
    hook = receiver([])
    hook.secret = _subscribe(api, key_for(tenant.id), hook.url, events=["ticket.status_changed"])["secret"]
    make_ticket(runtime, tenant_id=tenant.id, inbox_id=inbox.id)
    make_ticket(runtime, tenant_id=other.id, inbox_id=other_inbox.id)
    drain_jobs(runtime, only={DELIVER_JOB}, include_delayed=True)
    assert hook.seen == []


def test_the_secret_is_shown_at_creation_and_rotation_only(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    sub = _subscribe(api, key, "https://hooks.example.com/in")
    shown = api.get(f"/api/v1/webhooks/{sub['id']}", headers=key)
    listed = api.get("/api/v1/webhooks", headers=key).json()["items"]
    rotated = api.post(f"/api/v1/webhooks/{sub['id']}/rotate-secret", headers=key)
    assert sub["secret"].startswith("whsec_") and "secret" not in shown.json() and "secret" not in listed[0]
    assert rotated.status_code == 200 and rotated.json()["secret"] not in ("", sub["secret"])


def test_update_needs_a_fresh_etag_and_reenabling_resets_the_failure_count(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    sub = _subscribe(api, key, "https://hooks.example.com/in")
    etag = api.get(f"/api/v1/webhooks/{sub['id']}", headers=key).headers["ETag"]
    with tenant_scope(runtime.factory, tenant.id) as session:
        row = session.get(WebhookSubscription, sub["id"])
        assert row is not None
        for n in range(3):
            service.record_attempt(session=session, sub=row, event_id=f"evt_{n}", event_kind="ticket.opened",
                                   attempt=1, result=AttemptResult(False, 503, 5, "HTTP 503", retry=True),
                                   disable_after=3)
    stale = api.patch(f"/api/v1/webhooks/{sub['id']}", headers={**key, "If-Match": etag}, json={"active": True})
    disabled = api.get(f"/api/v1/webhooks/{sub['id']}", headers=key)
    again = api.patch(f"/api/v1/webhooks/{sub['id']}", headers={**key, "If-Match": disabled.headers["ETag"]},
                      json={"active": True})
    assert stale.status_code == 412
    assert (disabled.json()["active"], disabled.json()["consecutive_failures"]) == (False, 3)
    assert "3 consecutive" in disabled.json()["disabled_reason"]
    assert (again.json()["active"], again.json()["consecutive_failures"], again.json()["disabled_reason"]) == (
        True, 0, None)


def test_delete_removes_the_subscription_and_a_read_key_cannot_subscribe(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    sub = _subscribe(api, key, "https://hooks.example.com/in")
    read = api.post("/api/v1/webhooks", headers=key_for(tenant.id, ApiKeyScope.READ),
                    json={"url": "https://hooks.example.com/x", "events": ["ticket.opened"]})
    gone = api.delete(f"/api/v1/webhooks/{sub['id']}", headers=key)
    assert (read.status_code, gone.status_code) == (403, 204)
    assert api.get(f"/api/v1/webhooks/{sub['id']}", headers=key).status_code == 404
    with tenant_scope(runtime.factory, tenant.id) as session:
        assert session.execute(select(WebhookSubscription)).all() == []


def test_non_http_urls_and_unknown_events_are_refused(
    runtime: Runtime, api: TestClient, key_for: Callable[..., Headers]
) -> None:
    tenant, _ = make_tenant(runtime)
    key = key_for(tenant.id)
    ftp = api.post("/api/v1/webhooks", headers=key, json={"url": "ftp://x.example/", "events": ["ticket.opened"]})
    internal = api.post("/api/v1/webhooks", headers=key, json={"url": "https://x.example/", "events": ["mail.held"]})
    assert (ftp.status_code, ftp.json()["type"]) == (422, "https://threadline.dev/problems/invalid-input")
    assert internal.status_code == 422


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://localhost:8080/", "http://[::1]/", "http://10.1.2.3/", "http://169.254.169.254/",
    "http://192.168.0.1/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/", "https://user:pw@example.com/",
])
def test_loopback_private_and_credentialed_targets_are_refused_by_default(url: str) -> None:
    with pytest.raises(TargetRefused):
        check_url(url, allow_private=False)


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    with pytest.raises(TargetRefused):
        resolve("https://hooks.example.com/in", allow_private=False, resolver=lambda host, port: ["10.0.0.7"])


def test_delivery_connects_to_the_checked_address_with_the_name_for_host_and_tls() -> None:
    target = resolve("https://hooks.example.com:8443/in?x=1", allow_private=False,
                     resolver=lambda host, port: ["93.184.216.34"])
    assert (target.connect_url, target.host_header, target.tls_server_name) == (
        "https://93.184.216.34:8443/in?x=1", "hooks.example.com:8443", "hooks.example.com")


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_fresh_timestamp() -> None:
    header = sign("whsec_a", b'{"x":1}', timestamp=1_700_000_000)
    assert verify("whsec_a", header, b'{"x":1}', now=1_700_000_010)
    assert not verify("whsec_b", header, b'{"x":1}', now=1_700_000_010)
    assert not verify("whsec_a", header, b'{"x":2}', now=1_700_000_010)
    assert not verify("whsec_a", header, b'{"x":1}', now=1_700_001_000)
