"""The poller's pure decisions: checkpoint reset, UID filtering, batching, keys, backoff."""

from __future__ import annotations

import uuid

import pytest

from inbound.imap.poller import (
    Checkpoint,
    backoff_delay,
    idempotency_key,
    nothing_new,
    plan_batches,
    reconcile,
    search_criteria,
    uids_after,
)


def test_first_poll_adopts_the_servers_uidvalidity_without_calling_it_a_reset() -> None:
    assert reconcile(Checkpoint(None, 0), server_uidvalidity=7) == (Checkpoint(7, 0), False)


def test_same_uidvalidity_keeps_the_checkpoint() -> None:
    assert reconcile(Checkpoint(7, 42), server_uidvalidity=7) == (Checkpoint(7, 42), False)


def test_changed_uidvalidity_resets_the_checkpoint_to_the_start_of_the_folder() -> None:
    assert reconcile(Checkpoint(7, 42), server_uidvalidity=9) == (Checkpoint(9, 0), True)


@pytest.mark.parametrize(
    ("uidnext", "last_uid", "expected"), [(None, 5, False), (6, 5, True), (7, 5, False), (1, 0, True)]
)
def test_uidnext_tells_when_no_search_is_needed(uidnext: int | None, last_uid: int, expected: bool) -> None:
    assert nothing_new(uidnext=uidnext, last_uid=last_uid) is expected


def test_search_asks_for_uids_above_the_checkpoint() -> None:
    assert search_criteria(41) == ["UID", "42:*"]


def test_uid_range_star_returning_the_last_old_uid_is_filtered_out() -> None:
    # RFC 3501: `UID 101:*` with 100 as the highest UID matches UID 100.
    assert uids_after([100], 100) == []
    assert uids_after([103, 101, 100, 102, 101], 100) == [101, 102, 103]


def test_batches_are_cut_by_count() -> None:
    uids = list(range(1, 121))
    batches = plan_batches(uids, sizes={}, max_count=50)
    assert [len(b) for b in batches] == [50, 50, 20]
    assert sum(batches, []) == uids


def test_batches_are_cut_by_bytes_and_a_huge_mail_gets_its_own_batch() -> None:
    sizes = {1: 10, 2: 10, 3: 100, 4: 10}
    assert plan_batches([1, 2, 3, 4], sizes=sizes, max_count=50, max_bytes=25) == [[1, 2], [3], [4]]


def test_idempotency_key_follows_the_bytes_not_the_uid() -> None:
    account = uuid.uuid4()
    assert idempotency_key(account_id=account, raw=b"a") == idempotency_key(account_id=account, raw=b"a")
    assert idempotency_key(account_id=account, raw=b"a") != idempotency_key(account_id=account, raw=b"b")
    assert idempotency_key(account_id=account, raw=b"a") != idempotency_key(account_id=uuid.uuid4(), raw=b"a")


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [backoff_delay(n, base=1.0, cap=30.0, jitter=0) for n in range(7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
