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


def lock_holder(data_dir: Path) -> int | None:
    """The pid of a live `threadline up` holding the data directory, without touching the lock
    (taking it, even shared, could make an `up` starting at that instant refuse to run)."""
    try:
        pid = int((data_dir / LOCK_FILE).read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if b"up" in cmdline else None
