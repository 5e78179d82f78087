"""Account upserts keep or reset the checkpoint, and the checkpoint write is a compare-and-set."""

from __future__ import annotations

from core.db.session import system_scope, tenant_scope
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAccount, ImapTls
from core.tenancy.models import Inbox
from inbound.imap.accounts import AccountSpec, save_checkpoint, upsert_account
from inbound.imap.poller import Checkpoint
from tests.conftest import make_tenant


def _upsert(rt: Runtime, inbox: Inbox, spec: AccountSpec) -> ImapAccount:
    with system_scope(rt.factory) as session:
        return upsert_account(session=session, inbox=session.merge(inbox), spec=spec, password_encrypted="token")[0]


def _set_checkpoint(rt: Runtime, account: ImapAccount, new: Checkpoint, expected: Checkpoint) -> bool:
    with tenant_scope(rt.factory, account.tenant_id) as session:
        return save_checkpoint(session=session, account_id=account.id, expected=expected, new=new)


SPEC = AccountSpec(host="imap.acme.test", port=993, tls=ImapTls.SSL, username="help")


def test_changing_the_port_keeps_the_checkpoint_but_another_folder_resets_it(runtime: Runtime) -> None:
    _, inbox = make_tenant(runtime)
    account = _upsert(runtime, inbox, SPEC)
    assert _set_checkpoint(runtime, account, Checkpoint(7, 40), expected=Checkpoint(None, 0))

    same_mailbox = _upsert(runtime, inbox, AccountSpec(**{**SPEC.__dict__, "port": 1993}))
    other_folder = _upsert(runtime, inbox, AccountSpec(**{**SPEC.__dict__, "folder": "Support"}))

    assert (same_mailbox.uidvalidity, same_mailbox.last_uid) == (7, 40)
    assert (other_folder.uidvalidity, other_folder.last_uid) == (None, 0)


def test_a_stale_checkpoint_write_is_refused(runtime: Runtime) -> None:
    _, inbox = make_tenant(runtime)
    account = _upsert(runtime, inbox, SPEC)
    assert _set_checkpoint(runtime, account, Checkpoint(7, 40), expected=Checkpoint(None, 0))

    assert _set_checkpoint(runtime, account, Checkpoint(7, 50), expected=Checkpoint(7, 10)) is False
