"""Group commit: concurrent mails share a batch, and one mail's failure refuses only that mail."""

from __future__ import annotations

import asyncio
import smtplib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from core.runtime import Runtime
from inbound.smtp.group_commit import GroupCommit
from tests.conftest import make_tenant
from tests.support.threadline_smtp import make_mail, running_smtp, stored_raws


def test_mails_arriving_while_a_commit_runs_share_the_next_batch() -> None:
    batches: list[list[int]] = []
    first_running, release_first = threading.Event(), threading.Event()

    def store(items: Sequence[int]) -> list[int | BaseException]:
        batches.append(list(items))
        if len(batches) == 1:
            first_running.set()
            release_first.wait(5)
        return [i * 10 for i in items]

    async def run() -> list[int]:
        commits: GroupCommit[int, int] = GroupCommit(store)
        first = asyncio.ensure_future(commits.submit(0))
        await asyncio.to_thread(first_running.wait, 5)
        rest = [asyncio.ensure_future(commits.submit(i)) for i in range(1, 6)]
        await asyncio.sleep(0)
        release_first.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(run()) == [0, 10, 20, 30, 40, 50]
    assert batches == [[0], [1, 2, 3, 4, 5]]


def test_an_item_that_failed_gets_its_own_error_and_the_others_their_result() -> None:
    def store(items: Sequence[int]) -> list[int | BaseException]:
        return [ValueError(f"bad {i}") if i == 2 else i for i in items]

    async def run() -> list[object]:
        commits: GroupCommit[int, int] = GroupCommit(store)
        return await asyncio.gather(*(commits.submit(i) for i in range(4)), return_exceptions=True)

    results = asyncio.run(run())
    assert [r if isinstance(r, int) else str(r) for r in results] == [0, 1, "bad 2", 3]


@pytest.mark.slow
def test_concurrent_connections_each_get_250_and_every_mail_is_stored_once(runtime: Runtime) -> None:
    make_tenant(runtime, address="help@acme.test")
    mails = [make_mail(subject=f"mail {i}", message_id=f"<g{i}@customer.test>") for i in range(24)]
    with running_smtp(runtime) as server:

        def send(indices: range) -> None:
            with smtplib.SMTP(server.host, server.port, timeout=30) as client:
                for i in indices:
                    assert client.sendmail("bob@customer.test", ["help@acme.test"], mails[i]) == {}

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(send, [range(c, 24, 6) for c in range(6)]))
    assert sorted(r.payload for r in stored_raws(runtime)) == sorted(mails)
