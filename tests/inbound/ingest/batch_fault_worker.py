"""A worker process that runs one batched `ingest.process` delivery and SIGKILLs itself right after
the Nth mail of the batch committed (its outbox rows not yet finished: the batch records them last).

Started as a fresh interpreter (`python -m tests.inbound.ingest.batch_fault_worker SETTINGS_PICKLE
DB_URL OUTBOX_ID N`), never forked from the threaded test process. The kill point is armed here only.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from datetime import timedelta
from typing import Any

from core.db.session import make_engine, make_session_factory
from core.jobs.runner import run_outbox_job
from core.registry import Registry, load_plugins
from inbound.ingest import jobs

LEASE = timedelta(milliseconds=500)


def main() -> None:
    settings_path, url, outbox_id, after = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    with open(settings_path, "rb") as f:
        settings = pickle.load(f)  # noqa: S301 - written by the test that started us
    original = jobs.process_raw
    done = 0

    def process_then_maybe_die(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        result = original(*args, **kwargs)
        done += 1
        if done == after:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    jobs.process_raw = process_then_maybe_die  # type: ignore[assignment]
    registry = load_plugins(Registry())
    factory = make_session_factory(make_engine(url, pool_size=2))
    result = run_outbox_job(outbox_id, settings=settings, factory=factory, registry=registry, lease=LEASE)
    print(f"result {result.value}", flush=True)
    os._exit(3)  # the kill point did not fire


if __name__ == "__main__":
    main()
