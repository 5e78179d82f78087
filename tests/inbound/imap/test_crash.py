"""Fault test: the poller killed after commit and before its after-action → no duplicate on restart."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.db.session import system_scope
from core.jobs.models import OutboxRow
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAfterAction
from inbound.ingest.accept import PROCESS_JOB
from tests.inbound.imap.conftest import account_row, append, folder_flags, make_account, message, poll, raw_count
from tests.support.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]


def _process_jobs(rt: Runtime, tenant_id: object) -> int:
    with system_scope(rt.factory) as session:
        return int(session.execute(
            select(func.count()).select_from(OutboxRow)
            .where(OutboxRow.tenant_id == tenant_id, OutboxRow.job == PROCESS_JOB)
        ).scalar_one())


def test_poller_killed_after_commit_before_after_action_leaves_no_duplicate_on_restart(
    runtime: Runtime, database_url: str, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    append(dovecot, mail_user, [message(n) for n in range(5)])
    account = make_account(runtime, dovecot, mail_user, after=ImapAfterAction.MOVE, move_to="Archive")

    crashed = subprocess.run(
        [sys.executable, "-m", "tests.inbound.imap.crash_runner", database_url, str(runtime.settings.data_dir),
         str(account.id), str(account.tenant.id), "3"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    # The window: three mails committed, none moved, the checkpoint still before them.
    at_crash = (raw_count(runtime, account), len(folder_flags(dovecot, mail_user)))
    assert (*at_crash, account_row(runtime, account).last_uid) == (3, 5, 0)

    restarted = poll(runtime, account)

    assert (restarted.duplicates, restarted.accepted) == (3, 2)
    assert (raw_count(runtime, account), _process_jobs(runtime, account.tenant.id)) == (5, 5)
    assert (len(folder_flags(dovecot, mail_user)), len(folder_flags(dovecot, mail_user, "Archive"))) == (0, 5)
    assert account_row(runtime, account).last_uid == 5
