"""Pure decisions of the IMAP poller: what to fetch, in which batches, under which key, when to retry.

Nothing here talks to a server or a database, so every rule is a plain unit test.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from inbound.ingest.accept import content_key

# RFC 2177 §3: servers may log an idle client out after 30 minutes; re-issue IDLE before that.
IDLE_MAX_SECONDS = 25 * 60
BATCH_SIZE = 50
BATCH_BYTES = 32 * 1024 * 1024  # bodies held in memory at once (one 25 MB mail still fits alone)
SIZE_CHUNK = 1000  # UIDs per RFC822.SIZE fetch (tiny responses; bounds one command's length)


@dataclass(frozen=True)
class Checkpoint:
    """What we have taken from one folder: every UID <= last_uid under this UIDVALIDITY."""

    uidvalidity: int | None
    last_uid: int


def reconcile(stored: Checkpoint, *, server_uidvalidity: int) -> tuple[Checkpoint, bool]:
    """The checkpoint to use against the server's UIDVALIDITY, and whether it was reset.

    RFC 3501 §2.3.1.1: UIDs are only meaningful together with UIDVALIDITY; when it changes (folder
    re-created, server migrated) every old UID is void and the folder must be read from the start.
    Messages we took before reappear under new UIDs; the content-based idempotency key (see
    `idempotency_key`) recognises them, so the reset re-reads but does not re-ingest.
    """
    if stored.uidvalidity == server_uidvalidity:
        return stored, False
    return Checkpoint(uidvalidity=server_uidvalidity, last_uid=0), stored.uidvalidity is not None


def nothing_new(*, uidnext: int | None, last_uid: int) -> bool:
    """SELECT's UIDNEXT (RFC 3501 §2.3.1.1) shows no UID above the checkpoint: skip the search."""
    return uidnext is not None and uidnext <= last_uid + 1


def search_criteria(last_uid: int) -> list[str]:
    return ["UID", f"{last_uid + 1}:*"]


def uids_after(found: Iterable[int], last_uid: int) -> list[int]:
    """UIDs above the checkpoint, ascending.

    The filter is needed: in `UID n:*`, `*` is the highest UID in use and a range is unordered
    (RFC 3501 §6.4.8, §9 seq-range), so `UID 101:*` returns UID 100 when 100 is the last message.
    """
    return sorted({int(uid) for uid in found if int(uid) > last_uid})


def chunks(uids: list[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(uids), size):
        yield uids[start : start + size]


def plan_batches(
    uids: list[int], *, sizes: Mapping[int, int], max_count: int = BATCH_SIZE, max_bytes: int = BATCH_BYTES
) -> list[list[int]]:
    """Ascending UIDs cut into batches of at most `max_count` mails and about `max_bytes` of bodies.

    A single mail larger than `max_bytes` gets a batch of its own. A UID without a size (expunged
    since the search) still goes into a batch: its fetch returns nothing and it is skipped there.
    """
    batches: list[list[int]] = []
    current: list[int] = []
    current_bytes = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if current and (len(current) >= max_count or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(uid)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


def idempotency_key(*, account_id: uuid.UUID, raw: bytes) -> str:
    """Key of one mail taken from one account: its exact bytes, not its UID.

    A re-fetch after a crash (between commit and after-action) and a re-read after a UIDVALIDITY
    reset both return the same bytes, so both are recognised as already accepted. Byte-identical
    copies in one folder (a client copying a mail twice) are one message to us; a real second
    delivery differs at least in its Received/Delivered-To trace headers (RFC 5321 §4.4).
    """
    return content_key("imap", str(account_id), hashlib.sha256(raw).hexdigest())


def backoff_delay(attempt: int, *, base: float, cap: float, jitter: float = 0.2) -> float:
    """Exponential backoff with ±`jitter` spread, so many accounts on one server do not reconnect in step."""
    delay = min(cap, base * (2 ** max(0, attempt)))
    return max(0.0, delay * (1 + random.uniform(-jitter, jitter)))
