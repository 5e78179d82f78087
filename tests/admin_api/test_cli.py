"""`threadline keys|agents|inbox set|webhooks`: the admin services from a shell.

The commands run in this process (tests/support/cli.run_cli: the real command tree, settings from the
given environment); one test runs the console script as a subprocess, for the process boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.db.session import tenant_scope
from core.runtime import Runtime
from core.webhooks import service
from tests.admin_api.conftest import make_key
from tests.conftest import make_tenant
from tests.support.cli import Ran, run_cli

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _env(rt: Runtime) -> dict[str, str | None]:
    return {"DATABASE_URL": rt.database_url, "THREADLINE_DATA_DIR": str(rt.settings.data_dir),
            "THREADLINE_LOG_LEVEL": "WARNING", "REDIS_URL": None}


def _cli(rt: Runtime, *args: str) -> Ran:
    return run_cli(*args, env=_env(rt))


def test_the_console_script_lists_the_keys_made_in_the_shell(runtime: Runtime) -> None:
    """The process boundary once: `python -m core.cli keys list` as a real process sees a created key."""
    make_tenant(runtime)
    created = json.loads(_cli(runtime, "keys", "create", "ops", "--scope", "read", "--json").stdout)
    env = {k: v for k, v in {**os.environ, **_env(runtime)}.items() if v is not None}
    listed = subprocess.run([sys.executable, "-m", "core.cli", "keys", "list"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert (listed.returncode, f"{created['prefix']}  read" in listed.stdout) == (0, True), listed.stderr


def test_keys_create_rotate_revoke_from_the_shell_match_the_api(runtime: Runtime, api: TestClient) -> None:
    tenant, _ = make_tenant(runtime)
    created = json.loads(_cli(runtime, "keys", "create", "ops", "--scope", "read", "--json").stdout)
    rotated = json.loads(_cli(runtime, "keys", "rotate", created["prefix"], "--json").stdout)
    listed = _cli(runtime, "keys", "list")
    revoked = _cli(runtime, "keys", "revoke", rotated["prefix"])
    assert (created["scope"], rotated["replaces"], revoked.returncode) == ("read", created["prefix"], 0)
    assert f"{created['prefix']}  read     revoked" in listed.stdout and created["secret"] not in listed.stdout
    assert api.get("/api/v1/inboxes", headers={"Authorization": f"Bearer {rotated['secret']}"}).status_code == 401
    platform = json.loads(_cli(runtime, "keys", "create", "platform ops", "--scope", "platform", "--json").stdout)
    assert api.get("/api/v1/tenants", headers={"Authorization": f"Bearer {platform['secret']}"}).status_code == 200


def test_agents_and_inbox_settings_from_the_shell_are_audited(runtime: Runtime, api: TestClient) -> None:
    tenant, inbox = make_tenant(runtime)
    added = _cli(runtime, "agents", "add", "Dee@Acme.test", "--role", "admin")
    role = _cli(runtime, "agents", "role", "dee@acme.test", "read-only")
    duplicate = _cli(runtime, "agents", "add", "dee@acme.test")
    listed = json.loads(_cli(runtime, "agents", "list", "--json").stdout)
    deactivated = _cli(runtime, "agents", "deactivate", "dee@acme.test")
    after = json.loads(_cli(runtime, "agents", "list", "--json").stdout)
    inbox_set = json.loads(_cli(runtime, "inbox", "set", inbox.address, "--reply-mode", "explicit", "--ack", "on",
                                "--ack-text", "Thanks, we are on it.", "--json").stdout)
    nothing = _cli(runtime, "inbox", "set", inbox.address)
    assert (added.returncode, role.returncode, duplicate.returncode, deactivated.returncode, nothing.returncode) == (
        0, 0, 1, 0, 2)
    assert ([(a["email"], a["role"]) for a in listed], after) == ([("dee@acme.test", "read-only")], [])
    assert (inbox_set["reply_mode"], inbox_set["send_acknowledgement"], inbox_set["acknowledgement_text"]) == (
        "explicit", True, "Thanks, we are on it.")
    audit = api.get("/api/v1/audit?actor=cli:", headers=make_key(runtime, tenant.id)).json()["items"]
    assert [e["action"] for e in audit] == ["inbox.updated", "agent.deactivated", "agent.updated", "agent.created"]


def test_webhooks_create_list_deliveries_disable_from_the_shell(runtime: Runtime, api: TestClient) -> None:
    """The same service as the API: a private URL is refused (exit 2), the secret is printed once, the
    list and the delivery log are tables with headers, disable shows in the API and the audit log."""
    tenant, _ = make_tenant(runtime)
    headers = make_key(runtime, tenant.id)
    refused = _cli(runtime, "webhooks", "create", "http://127.0.0.1:9/hook", "--event", "ticket.opened")
    created = json.loads(_cli(runtime, "webhooks", "create", "https://hooks.example.com/tl", "--event",
                              "ticket.opened", "--event", "message.appended", "--json").stdout)
    sub_id = uuid.UUID(created["id"])
    with tenant_scope(runtime.factory, tenant.id) as session:
        sub = service.get_subscription(session=session, tenant_id=tenant.id, subscription_id=sub_id, lock=True)
        service.record_attempt(session=session, sub=sub, event_id="evt-1", event_kind="ticket.opened", attempt=1,
                               result=service.AttemptResult(False, 500, 12, "HTTP 500", retry=True))
    listed = _cli(runtime, "webhooks", "list")
    log = _cli(runtime, "webhooks", "deliveries", str(sub_id))
    disabled = _cli(runtime, "webhooks", "disable", str(sub_id))
    unknown = _cli(runtime, "webhooks", "deliveries", str(uuid.uuid4()))
    assert (refused.returncode, disabled.returncode, unknown.returncode) == (2, 0, 1)
    assert created["events"] == ["message.appended", "ticket.opened"] and len(created["secret"]) > 20
    assert listed.stdout.split()[:6] == ["ID", "URL", "EVENTS", "STATE", "FAILURES", "CREATED"]
    assert f"{sub_id}  https://hooks.example.com/tl  message.appended,ticket.opened  active  1" in listed.stdout
    assert created["secret"] not in listed.stdout + log.stdout
    assert log.stdout.splitlines()[0].split()[:4] == ["TIME", "EVENT", "EVENT", "ID"]
    assert "ticket.opened  evt-1     1        failed  500   12  HTTP 500" in log.stdout
    assert api.get(f"/api/v1/webhooks/{sub_id}", headers=headers).json()["active"] is False
    audit = api.get("/api/v1/audit?actor=cli:", headers=headers).json()["items"]
    assert [e["action"] for e in audit] == ["webhook.updated", "webhook.created"]
