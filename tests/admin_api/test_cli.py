"""`threadline keys|agents|inbox set`: the admin services from a shell, as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.runtime import Runtime
from tests.admin_api.conftest import make_key
from tests.conftest import make_tenant

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _cli(rt: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": rt.database_url, "THREADLINE_DATA_DIR": str(rt.settings.data_dir),
           "THREADLINE_LOG_LEVEL": "WARNING"}
    env.pop("REDIS_URL", None)
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


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
