"""`threadline inbox ...` (in this process: tests/support/cli.run_cli) and `threadline imap` (a real
process, stopped by SIGTERM) against Postgres and Dovecot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from core.crypto import SecretBox
from core.db.session import system_scope
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAccount, ImapAfterAction, ImapTls
from tests.conftest import make_tenant
from tests.inbound.imap.conftest import account_row, append, make_account, message, raw_count
from tests.support.cli import Ran, run_cli
from tests.support.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
CLI = [sys.executable, "-m", "tests.inbound.imap.cli_entry"]


def _env(rt: Runtime, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "THREADLINE_SECRET_KEY"}}
    env.update(DATABASE_URL=database_url, THREADLINE_DATA_DIR=str(rt.settings.data_dir), THREADLINE_LOG_LEVEL="WARNING")
    return env


def account_row_for(rt: Runtime, inbox_id: object) -> ImapAccount:
    with system_scope(rt.factory) as session:
        return session.execute(select(ImapAccount).where(ImapAccount.inbox_id == inbox_id)).scalar_one()


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> Ran:
    return run_cli(*args, env={**env, "REDIS_URL": None, "THREADLINE_SECRET_KEY": None}, stdin=stdin)


def test_inbox_imap_stores_the_password_encrypted_and_never_prints_it(
    runtime: Runtime, database_url: str, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    tenant, inbox = make_tenant(runtime)
    env = _env(runtime, database_url)

    saved = _cli(env, "inbox", "imap", inbox.address, "--host", dovecot.host, "--port", str(dovecot.port), "--tls",
                 "none", "--user", mail_user.name, "--password-stdin", "--after", "move", "--move-to", "Archive",
                 stdin=f"{mail_user.password}\n")
    listed = _cli(env, "inbox", "list", "--json")

    assert (saved.returncode, listed.returncode) == (0, 0), saved.stderr + listed.stderr
    assert mail_user.password not in saved.stdout + saved.stderr + listed.stdout + listed.stderr
    entry = next(e for e in json.loads(listed.stdout) if e["address"] == inbox.address)
    assert entry["imap"] | {"last_polled_at": None} == {
        "host": dovecot.host, "port": dovecot.port, "tls": "none", "user": mail_user.name, "folder": "INBOX",
        "after": "move", "move_to": "Archive", "enabled": True, "uidvalidity": None, "last_uid": 0,
        "last_polled_at": None, "last_error": None,
    }
    stored = account_row_for(runtime, inbox.id).password_encrypted  # a token only our key opens
    assert mail_user.password not in stored
    assert SecretBox.from_settings(runtime.settings).decrypt(stored) == mail_user.password


def test_inbox_imap_refuses_move_without_a_target_folder(runtime: Runtime, database_url: str) -> None:
    _, inbox = make_tenant(runtime)
    env = _env(runtime, database_url) | {"TL_TEST_PW": "secret-value-1"}

    result = _cli(env, "inbox", "imap", inbox.address, "--host", "127.0.0.1", "--tls", "none", "--user", "u",
                  "--password-env", "TL_TEST_PW", "--after", "move")

    assert (result.returncode, "--move-to" in result.stderr) == (2, True)


def test_imap_test_says_what_works_and_what_does_not_in_plain_words(
    runtime: Runtime, database_url: str, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    good = make_account(runtime, dovecot, mail_user, after=ImapAfterAction.MOVE, move_to="Archive")
    bad = make_account(runtime, dovecot, mail_user, password="wrong-password")
    env = _env(runtime, database_url)

    ok = _cli(env, "inbox", "imap-test", good.inbox.address)
    refused = _cli(env, "inbox", "imap-test", bad.inbox.address)

    assert (ok.returncode, f"logged in as {mail_user.name}" in ok.stdout, "IDLE: yes" in ok.stdout) == (0, True, True)
    assert (refused.returncode, "refused the user name or password" in refused.stderr) == (1, True)


def test_inbox_add_creates_an_inbox_once(runtime: Runtime, database_url: str) -> None:
    tenant, _ = make_tenant(runtime)
    env = _env(runtime, database_url)

    first = _cli(env, "inbox", "add", "Help@Acme.test", "--name", "Help", "--tenant", tenant.slug)
    second = _cli(env, "inbox", "add", "help@acme.test", "--tenant", tenant.slug)

    assert (first.returncode, second.returncode, "already exists" in second.stderr) == (0, 1, True)


def test_imap_disable_turns_polling_off(
    runtime: Runtime, database_url: str, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account = make_account(runtime, dovecot, mail_user)

    result = _cli(_env(runtime, database_url), "inbox", "imap-disable", account.inbox.address)

    assert (result.returncode, account_row(runtime, account).enabled) == (0, False)


def test_threadline_imap_takes_mail_and_stops_on_sigterm(
    runtime: Runtime, database_url: str, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account = make_account(runtime, dovecot, mail_user, tls=ImapTls.NONE)
    proc = subprocess.Popen([*CLI, "imap"], env=_env(runtime, database_url), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        append(dovecot, mail_user, [message(1)])
        deadline = time.monotonic() + 30
        while raw_count(runtime, account) == 0 and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.1)
        assert raw_count(runtime, account) == 1
    finally:
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert (code, time.monotonic() - started < 5) == (0, True)
