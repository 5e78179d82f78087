"""One `threadline up` per data directory: an exclusive flock on a pid file inside it.

flock is released by the kernel when its holder dies (even by SIGKILL), so a stale file never
blocks a restart; the pid in it only names the holder in the refusal.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from core.errors import OperatorError

LOCK_FILE = "up.pid"


class DataDirBusy(OperatorError):
    """Another process holds the data directory's lock."""


def lock_data_dir(data_dir: Path) -> IO[str]:
    """Take the lock and write our pid; keep the returned file open for as long as we run."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / LOCK_FILE
    handle = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise DataDirBusy(
            f"Threadline is already running on {data_dir} (pid {holder}, lock {path}); stop it first"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle
