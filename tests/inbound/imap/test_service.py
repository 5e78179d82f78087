"""The poller against a real Dovecot and Postgres: what it takes, what it leaves, what it does after."""

from __future__ import annotations

import logging
import ssl
import threading
import time

import pytest
from imapclient import IMAPClient

from core.crypto import SecretBox
from core.runtime import Runtime
from core.tenancy.imap_models import ImapAfterAction, ImapTls
from inbound.imap.service import PollerOptions, serve_imap
from inbound.imap.session import FLAG_KEYWORD
from tests.inbound.imap.conftest import (
    account_row,
    append,
    folder_flags,
    imap_as,
    make_account,
    message,
    poll,
    raw_count,
    raw_rows,
)
from tests.support.dovecot import DovecotServer, MailUser

pytestmark = pytest.mark.slow


def test_a_poll_takes_every_mail_once_leaves_it_unseen_and_moves_the_checkpoint(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    raws = [message(n) for n in range(3)]
    append(dovecot, mail_user, raws)
    account = make_account(runtime, dovecot, mail_user)

    result = poll(runtime, account)

    rows = raw_rows(runtime, account)
    assert sorted(r.payload for r in rows) == sorted(raws)
    assert {(r.source, r.inbox_id, r.envelope["folder"]) for r in rows} == {("imap", account.inbox.id, "INBOX")}
    assert (result.accepted, account_row(runtime, account).last_uid) == (3, 3)
    assert all(b"\\Seen" not in flags and FLAG_KEYWORD in flags for flags in folder_flags(dovecot, mail_user).values())


def test_a_second_poll_takes_nothing_new(runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser) -> None:
    append(dovecot, mail_user, [message(1), message(2)])
    account = make_account(runtime, dovecot, mail_user)
    poll(runtime, account)

    again = poll(runtime, account)

    assert (again.accepted, again.duplicates, raw_count(runtime, account)) == (0, 0, 2)


def test_mail_another_client_already_read_is_still_taken(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    append(dovecot, mail_user, [message(1)], flags=(b"\\Seen",))
    account = make_account(runtime, dovecot, mail_user)

    assert poll(runtime, account).accepted == 1


def test_after_action_move_puts_taken_mail_into_the_target_folder(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    append(dovecot, mail_user, [message(1), message(2)])
    account = make_account(runtime, dovecot, mail_user, after=ImapAfterAction.MOVE, move_to="Archive")

    poll(runtime, account)

    assert (len(folder_flags(dovecot, mail_user)), len(folder_flags(dovecot, mail_user, "Archive"))) == (0, 2)
    assert raw_count(runtime, account) == 2


def test_after_action_delete_expunges_taken_mail(runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser) -> None:
    append(dovecot, mail_user, [message(1), message(2)])
    account = make_account(runtime, dovecot, mail_user, after=ImapAfterAction.DELETE)

    poll(runtime, account)

    assert (folder_flags(dovecot, mail_user), raw_count(runtime, account)) == ({}, 2)


def test_uidvalidity_change_rereads_the_folder_without_ingesting_mail_twice(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    old = [message(1), message(2)]
    with imap_as(dovecot, mail_user) as client:
        client.create_folder("Support")
    append(dovecot, mail_user, old, folder="Support")
    account = make_account(runtime, dovecot, mail_user, folder="Support")
    poll(runtime, account)
    before = account_row(runtime, account).uidvalidity
    with imap_as(dovecot, mail_user) as client:  # the folder is re-created: same mail, new UIDs
        client.delete_folder("Support")
        client.create_folder("Support")
    append(dovecot, mail_user, [*old, message(3)], folder="Support")

    result = poll(runtime, account)

    row = account_row(runtime, account)
    assert row.uidvalidity != before
    assert (result.reset, result.accepted, result.duplicates, row.last_uid) == (True, 1, 2, 3)
    assert raw_count(runtime, account) == 3


def test_a_backlog_is_taken_in_batches(runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser) -> None:
    with imap_as(dovecot, mail_user) as client:
        client.multiappend("INBOX", [message(n) for n in range(120)])
    account = make_account(runtime, dovecot, mail_user, after=ImapAfterAction.MOVE, move_to="Archive")

    started = time.monotonic()
    result = poll(runtime, account, PollerOptions(batch_size=50))
    seconds = time.monotonic() - started

    print(f"\nIMAP backlog: 120 mails in {seconds:.2f} s = {120 / seconds:.0f} mails/s")
    assert (result.batches, result.accepted, raw_count(runtime, account)) == (3, 120, 120)
    assert len(folder_flags(dovecot, mail_user, "Archive")) == 120


@pytest.mark.parametrize("tls", [ImapTls.SSL, ImapTls.STARTTLS])
def test_tls_modes_connect_and_take_mail(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser, trust: ssl.SSLContext, tls: ImapTls
) -> None:
    append(dovecot, mail_user, [message(1)])
    account = make_account(runtime, dovecot, mail_user, tls=tls)

    assert poll(runtime, account, PollerOptions(ssl_context=trust)).accepted == 1


def _serve(runtime: Runtime, options: PollerOptions) -> tuple[threading.Thread, threading.Event]:
    stop = threading.Event()
    thread = threading.Thread(target=serve_imap, args=(runtime,), kwargs={"stop": stop, "options": options})
    thread.start()
    return thread, stop


def _wait(predicate: object, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def _stop(thread: threading.Thread, stop: threading.Event) -> float:
    started = time.monotonic()
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    return time.monotonic() - started


def test_a_wrong_password_is_recorded_in_plain_words_and_the_poller_keeps_running(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = make_account(runtime, dovecot, mail_user, password="not-the-password")
    thread, stop = _serve(runtime, PollerOptions(backoff_base=0.2, backoff_max=0.5))
    try:
        _wait(lambda: account_row(runtime, account).last_error is not None, timeout=10)
        assert thread.is_alive()
    finally:
        _stop(thread, stop)
    error = account_row(runtime, account).last_error or ""
    assert "refused the user name or password" in error
    assert "not-the-password" not in error + caplog.text


def test_a_password_stored_under_another_key_is_reported_not_crashed(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account = make_account(runtime, dovecot, mail_user, box=SecretBox.from_material("some-other-deployments-key"))
    thread, stop = _serve(runtime, PollerOptions(backoff_base=0.2, backoff_max=0.5))
    try:
        _wait(lambda: account_row(runtime, account).last_error is not None, timeout=10)
    finally:
        _stop(thread, stop)
    assert "THREADLINE_SECRET_KEY" in (account_row(runtime, account).last_error or "")


def test_idle_wakes_the_poller_on_new_mail_and_a_stop_is_prompt(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account = make_account(runtime, dovecot, mail_user)
    # Polling every 10 minutes: only IDLE can explain a quick pick-up.
    thread, stop = _serve(runtime, PollerOptions(poll_seconds=600, idle_seconds=600))
    try:
        _wait(lambda: account_row(runtime, account).last_polled_at is not None, timeout=10)
        time.sleep(0.5)  # let the worker enter IDLE
        append(dovecot, mail_user, [message(1)])
        picked_up = _wait(lambda: raw_count(runtime, account) == 1, timeout=5)
    finally:
        stopped = _stop(thread, stop)
    print(f"\nIMAP IDLE: new mail taken {picked_up:.2f} s after APPEND; stop took {stopped:.2f} s")
    assert stopped < 2.5


def test_a_dropped_connection_is_reopened_and_mail_keeps_flowing(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    account = make_account(runtime, dovecot, mail_user)
    thread, stop = _serve(runtime, PollerOptions(poll_seconds=600, idle_seconds=600, backoff_base=0.2))
    try:
        _wait(lambda: account_row(runtime, account).last_polled_at is not None, timeout=10)
        time.sleep(0.3)
        dovecot.kick(mail_user)
        append(dovecot, mail_user, [message(1)])
        _wait(lambda: raw_count(runtime, account) == 1, timeout=10)
    finally:
        _stop(thread, stop)


def test_a_server_without_idle_is_polled(runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser) -> None:
    account = make_account(runtime, dovecot, mail_user)
    thread, stop = _serve(runtime, PollerOptions(use_idle=False, poll_seconds=0.3))
    try:
        _wait(lambda: account_row(runtime, account).last_polled_at is not None, timeout=10)
        append(dovecot, mail_user, [message(1)])
        _wait(lambda: raw_count(runtime, account) == 1, timeout=5)
    finally:
        _stop(thread, stop)


def test_imapclient_fetch_of_body_peek_really_leaves_seen_unset(dovecot: DovecotServer, mail_user: MailUser) -> None:
    """Pins the server behaviour the design relies on (RFC 3501 §6.4.5), independent of our code."""
    append(dovecot, mail_user, [message(1)])
    with imap_as(dovecot, mail_user) as client:
        assert isinstance(client, IMAPClient)
        client.select_folder("INBOX")
        client.fetch(client.search("ALL"), [b"BODY.PEEK[]"])
    assert all(b"\\Seen" not in f for f in folder_flags(dovecot, mail_user).values())


def test_a_mail_over_the_size_limit_is_kept_as_a_header_stub_and_left_in_the_mailbox(
    runtime: Runtime, dovecot: DovecotServer, mail_user: MailUser
) -> None:
    from core.blobs import BlobStore
    from inbound.ingest.pipeline import IngestDeps, process_raw

    big = message(2, subject="huge logs", body="x" * 50_000)
    append(dovecot, mail_user, [message(1), big])
    account = make_account(runtime, dovecot, mail_user)

    result = poll(runtime, account, PollerOptions(max_message_bytes=20_000))

    rows = sorted(raw_rows(runtime, account), key=lambda r: r.envelope["uid"])
    assert (result.accepted, result.too_large, account_row(runtime, account).last_uid) == (2, [2], 2)
    stub = rows[1]
    assert stub.envelope["too_large"] and stub.envelope["size"] > 20_000
    assert b"huge logs" in stub.payload and b"xxxx" not in stub.payload
    flags = folder_flags(dovecot, mail_user)
    assert FLAG_KEYWORD in flags[1] and FLAG_KEYWORD not in flags[2]  # the big one is untouched
    deps = IngestDeps(runtime.settings, runtime.factory, runtime.registry, BlobStore.from_settings(runtime.settings))
    processed = process_raw(deps, tenant_id=stub.tenant_id, raw_id=stub.id)
    assert processed.ticket_number is not None
    from core.db.session import system_scope
    from core.tickets.models import Message

    with system_scope(runtime.factory) as session:
        msg = session.get(Message, processed.message_id)
        assert "too-large" in msg.flags and "over the 20 KiB limit" in msg.body_text
        assert "only its headers were taken" in msg.body_text
