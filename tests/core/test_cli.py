"""The operator CLI as a user runs it: bootstrap, tickets, jobs, doctor, exit codes.

The commands run in this process (tests/support/cli.run_cli: the real command tree, settings from the
given environment); one test runs the console script as a subprocess, for the process boundary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest
from sqlalchemy import text

from core.db.session import system_scope
from core.runtime import Runtime
from tests.support.cli import Ran, run_cli
from tests.support.servers import RedisForTests


def _cli(*args: str, env: Mapping[str, str | None]) -> Ran:
    return run_cli(*args, env=env)


@pytest.fixture()
def env(runtime: Runtime, redis_server: RedisForTests, tmp_path: Path) -> dict[str, str | None]:
    return {"DATABASE_URL": runtime.database_url, "REDIS_URL": redis_server.url,
            "THREADLINE_DATA_DIR": str(tmp_path), "THREADLINE_SUPPORT_ADDRESS": "help@acme.test"}


def test_bootstrap_prints_the_key_once_and_stores_only_its_hash(env: dict[str, str], runtime: Runtime) -> None:
    first, second = _cli("bootstrap", env=env), _cli("bootstrap", env=env)
    key = first.stdout.split("store it now): ")[1].split()[0]
    with system_scope(runtime.factory) as session:
        stored = session.execute(text("SELECT key_hash FROM api_keys")).scalars().all()
    assert (first.returncode, second.returncode) == (0, 0)
    assert "already bootstrapped" in second.stdout and key not in second.stdout
    assert len(stored) == 1 and key not in stored[0]


def test_tickets_list_and_show_as_json(env: dict[str, str]) -> None:
    _cli("bootstrap", env=env)
    eml = Path(env["THREADLINE_DATA_DIR"]) / "m.eml"
    eml.write_bytes(b"From: bob@c.test\r\nTo: help@acme.test\r\nSubject: CLI ticket\r\nMessage-ID: <cli@c.test>\r\n\r\nhi\r\n")
    ingested = json.loads(_cli("ingest-eml", str(eml), env=env).stdout)
    listed = json.loads(_cli("tickets", "list", "--json", env=env).stdout)
    shown = json.loads(_cli("tickets", "show", "1", "--json", env=env).stdout)
    assert (ingested["ticket_number"], ingested["thread_rule"]) == (1, "new")
    assert [t["subject"] for t in listed] == ["CLI ticket"]
    assert [(m["direction"], m["thread_rule"]) for m in shown["messages"]] == [("inbound", "new")]


def test_unknown_ticket_is_a_plain_error_with_exit_1(env: dict[str, str]) -> None:
    _cli("bootstrap", env=env)
    res = _cli("tickets", "show", "999", env=env)
    assert (res.returncode, "no ticket #999" in res.stderr) == (1, True)


def test_bad_usage_exits_2_and_help_exits_0(env: dict[str, str]) -> None:
    assert _cli("tickets", "show", "not-a-number", env=env).returncode == 2
    assert _cli("no-such-command", env=env).returncode == 2
    assert _cli("--help", env=env).returncode == 0


def test_the_console_script_runs_a_command_and_exits_with_its_code(env: dict[str, str]) -> None:
    """The process boundary once: `python -m core.cli` loads the plugins, runs, and exits 1 on an error."""
    _cli("bootstrap", env=env)
    res = subprocess.run([sys.executable, "-m", "core.cli", "tickets", "show", "999"], capture_output=True, text=True,
                         env={**os.environ, **env}, timeout=120)
    assert (res.returncode, "no ticket #999" in res.stderr) == (1, True), res.stderr


def test_doctor_says_threadline_is_not_running_when_nothing_answers(env: dict[str, str]) -> None:
    """Regression: doctor said "all checks passed" with Threadline stopped (`up` with doctor running: test_up_process)."""
    from tests.support.servers import free_port

    res = _cli("doctor", env={**env, "SLACK_APP_TOKEN": None, "THREADLINE_API_PORT": str(free_port()),
                              "THREADLINE_SMTP_PORT": str(free_port())})
    failures = [line.split(" (")[0].strip() for line in res.stdout.splitlines() if line.strip().startswith("FAIL")]
    components = next(line for line in res.stdout.splitlines() if line.startswith("Components"))
    assert (res.returncode, failures) == (1, ["FAIL  Threadline is not running"]), res.stdout + res.stderr
    assert ("slack-socket" in components, "  default " in res.stdout, "  not set THREADLINE_" in res.stdout) == (
        False, False, True)


def test_doctor_explains_an_unreachable_database(env: dict[str, str]) -> None:
    res = _cli("doctor", env={**env, "DATABASE_URL": "postgresql+psycopg://u:secretpw@127.0.0.1:9/none"})
    assert res.returncode == 1
    assert "cannot reach DATABASE_URL" in res.stdout
    assert "secretpw" not in res.stdout + res.stderr


def test_doctor_names_a_placeholder_setting(env: dict[str, str]) -> None:
    res = _cli("doctor", env={**env, "SLACK_BOT_TOKEN": "changeme"})
    assert (res.returncode, "SLACK_BOT_TOKEN" in res.stdout, "placeholder" in res.stdout) == (1, True, True)


def test_tickets_and_inbox_lists_print_a_header_row(env: dict[str, str]) -> None:
    _cli("bootstrap", env=env)
    eml = Path(env["THREADLINE_DATA_DIR"]) / "m.eml"
    eml.write_bytes(b"From: bob@c.test\r\nTo: help@acme.test\r\nSubject: Header row\r\nMessage-ID: <hdr@c.test>\r\n\r\nhi\r\n")
    _cli("ingest-eml", str(eml), env=env)
    tickets, inboxes = _cli("tickets", "list", env=env).stdout.splitlines(), _cli("inbox", "list", env=env).stdout.splitlines()
    assert (tickets[0].split(), tickets[1].split()[0], inboxes[0].split()) == (
        ["NUMBER", "STATUS", "PRIORITY", "CHANNEL", "SUBJECT"], "#1", ["TENANT", "ADDRESS", "NAME", "SLACK"])


def test_an_unknown_tenant_is_answered_with_the_valid_slugs(env: dict[str, str]) -> None:
    slug = _cli("bootstrap", env=env).stdout.split("tenant: ")[1].split()[0]
    results = [_cli(*cmd, "--tenant", "nope", env=env) for cmd in (["tickets", "list"], ["inbox", "list"])]
    assert [(r.returncode, f"valid --tenant values: {slug}" in r.stderr) for r in results] == [(2, True), (2, True)]


def test_no_help_page_shows_a_bool_type_tag() -> None:
    """Regression: typer's rich help tagged every flag `<bool>`."""
    import click
    from click.testing import CliRunner
    from typer.main import get_command

    from core.cli.main import build_cli
    from core.registry import Registry, load_plugins

    root = get_command(build_cli(load_plugins(Registry())))

    def paths(cmd: click.Command, prefix: list[str]) -> list[list[str]]:
        subs = cmd.commands.values() if isinstance(cmd, click.Group) else []
        return [prefix] + [p for sub in subs for p in paths(sub, [*prefix, sub.name or ""])]

    tagged = [p for p in paths(root, []) if "<bool>" in CliRunner().invoke(root, [*p, "--help"]).output]
    assert tagged == []
