"""schemathesis against the live OpenAPI document of a running server: no 5xx, every answer as documented.

Each operation gets a few generated requests (valid and invalid) with a tenant admin key; the
checks are the server-error and conformance ones (status code, content type, headers, body
schema). Bounded so the whole run stays well under two minutes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from admin_api.app import create_app
from admin_api.ratelimit import RateLimit
from core.runtime import Runtime
from tests.admin_api.conftest import make_key
from tests.conftest import make_tenant
from tests.support.servers import free_port

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]


@pytest.fixture()
def live(runtime: Runtime) -> Iterator[tuple[str, dict[str, str]]]:
    """A real server with one tenant (an inbox, an admin key); the rate limit out of the way."""
    tenant, _ = make_tenant(runtime)
    key = make_key(runtime, tenant.id)
    port = free_port()
    app = create_app(runtime, rate_limit=RateLimit(per_second=10_000, burst=10_000))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}", key
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture()
def api_schema(live: tuple[str, dict[str, str]]) -> schemathesis.schemas.BaseSchema:
    return schemathesis.openapi.from_url(f"{live[0]}/openapi.json")


# The admin API only: /metrics and /widget/v1 have their own owners (see the issue 12 report).
schema = schemathesis.pytest.from_fixture("api_schema").include(path_regex="^/api/v1/")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case, live: tuple[str, dict[str, str]]) -> None:
    case.call_and_validate(base_url=live[0], headers=live[1], checks=CHECKS)


# The widget's JSON operations (inbound/widget/api.py): anonymous callers with random inbox ids and
# tokens, so mostly refusals (401/403/404/422), each of which must be declared with its body.
widget_schema = schemathesis.pytest.from_fixture("api_schema").include(
    path_regex="^/widget/v1/(conversations|messages)$")


@pytest.mark.slow
@widget_schema.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_every_widget_operation_answers_as_documented(case: schemathesis.Case,
                                                      live: tuple[str, dict[str, str]]) -> None:
    case.call_and_validate(base_url=live[0], checks=CHECKS)
