"""Fault-test helper: run one account's poller and SIGKILL this process right after the Nth commit.

    python -m tests.inbound.imap.crash_runner DATABASE_URL DATA_DIR ACCOUNT_ID TENANT_ID N

The kill lands between `accept_raw`'s commit and the batch's after-action and checkpoint: the
window a real crash (OOM killer, power loss, `kill -9`) could hit.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid
from pathlib import Path

from core.crypto import SecretBox
from core.registry import Registry
from core.runtime import build_runtime
from core.settings import Settings
from inbound.imap.service import PollerOptions, run_account


def main(argv: list[str]) -> None:
    database_url, data_dir, account_id, tenant_id, kill_after = argv
    settings = Settings(THREADLINE_DATA_DIR=Path(data_dir))
    runtime = build_runtime(settings, database_url=database_url, redis_url=None, registry=Registry(), pool_size=2)
    committed = 0

    def after_accept(_uid: int) -> None:
        nonlocal committed
        committed += 1
        if committed >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)

    run_account(
        runtime.factory, account_id=uuid.UUID(account_id), tenant_id=uuid.UUID(tenant_id),
        box=SecretBox.from_settings(settings), stop=threading.Event(),
        options=PollerOptions(after_accept=after_accept, backoff_max=1.0),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
