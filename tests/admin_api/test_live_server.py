"""The admin API behind a real uvicorn server: conventions hold over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from admin_api.app import create_app
from core.runtime import Runtime
from core.tenancy.models import ApiKeyScope
from tests.admin_api.conftest import make_key
from tests.conftest import make_tenant
from tests.support.servers import free_port


@pytest.fixture()
def live_url(runtime: Runtime) -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.mark.slow
def test_a_running_server_answers_problems_keys_and_idempotent_replays(live_url: str, runtime: Runtime) -> None:
    platform = make_key(runtime, None, ApiKeyScope.PLATFORM)
    make_tenant(runtime)
    with httpx.Client(base_url=live_url, timeout=10) as http:
        anonymous = http.get("/api/v1/tenants")
        body = {"name": "Live Co"}
        first = http.post("/api/v1/tenants", headers={**platform, "Idempotency-Key": "live-1"}, json=body)
        replay = http.post("/api/v1/tenants", headers={**platform, "Idempotency-Key": "live-1"}, json=body)
        tenants = http.get("/api/v1/tenants", headers=platform).json()["items"]
    assert (anonymous.status_code, anonymous.headers["content-type"], len(anonymous.headers["x-request-id"])) == (
        401, "application/problem+json", 16)
    assert (first.status_code, replay.json(), replay.headers["idempotent-replayed"]) == (201, first.json(), "true")
    assert [t["name"] for t in tenants].count("Live Co") == 1

