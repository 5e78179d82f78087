"""Run a function on untrusted input in a child process, under a wall-clock and memory budget.

Why a process: a regex or parser that goes quadratic on hostile input holds the GIL, so no
thread-based timeout (dramatiq's time limit included) can interrupt it, and every other job in
the worker stalls. A child process can be killed from outside; the worker carries on.

Children are fresh interpreters (no fork of a multi-threaded worker) and are reused, so the
start-up cost is paid once per child, not per item. A child that overran or died is killed and
replaced on the next call.
"""

from __future__ import annotations

import atexit
import logging
import pickle
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
_HEADER = struct.Struct("!Q")


class BudgetExceeded(Exception):
    """The item took longer than its wall-clock budget; the child was killed."""


class BudgetCrashed(Exception):
    """The child died while working on the item (out of memory, a crash in C code)."""


def write_frame(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    header = _read_exact(stream, _HEADER.size)
    return pickle.loads(_read_exact(stream, _HEADER.unpack(header)[0]))  # noqa: S301 - our own child


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the child closed its pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class _Child:
    """``python -m core.budget_child``: a plain subprocess, so nothing depends on how the
    parent was started (multiprocessing's spawn re-imports ``__main__``, which breaks for
    ``python -c`` and stdin scripts)."""

    def __init__(self, memory_mb: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "core.budget_child", str(memory_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, close_fds=True,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.stdin: IO[bytes] = self.process.stdin
        self.stdout: IO[bytes] = self.process.stdout

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_readable(self, seconds: float) -> bool:
        ready, _, _ = select.select([self.stdout.fileno()], [], [], seconds)
        return bool(ready)

    def kill(self) -> None:
        if self.alive():
            self.process.kill()
        self.process.wait(5)
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass


class BudgetRunner:
    """A small pool of reusable child processes; ``run`` blocks the calling thread only."""

    def __init__(self, *, seconds: float, memory_mb: int) -> None:
        self.seconds = seconds
        self.memory_mb = memory_mb
        self._idle: list[_Child] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` in a child; its exception is re-raised here.

        ``fn`` must be a module-level function and its arguments and result picklable.
        Raises BudgetExceeded past ``seconds``, BudgetCrashed when the child dies.
        """
        child = self._checkout()
        try:
            write_frame(child.stdin, (fn, args, kwargs))
            if not child.wait_readable(self.seconds):
                child.kill()
                raise BudgetExceeded(f"processing budget exceeded ({self.seconds:g} s)")
            kind, value = read_frame(child.stdout)
        except (EOFError, OSError) as exc:
            child.kill()
            raise BudgetCrashed(
                f"the process analysing it died (exit code {child.process.returncode}; "
                f"memory limit {self.memory_mb} MiB)"
            ) from exc
        except BaseException:
            child.kill()
            raise
        self._checkin(child)
        if kind == "err":
            raise value
        return value  # type: ignore[no-any-return]

    def _checkout(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
                child.kill()
        return _Child(self.memory_mb)

    def _checkin(self, child: _Child) -> None:
        with self._lock:
            if self._closed:
                child.kill()
            else:
                self._idle.append(child)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


_runners: dict[tuple[float, int], BudgetRunner] = {}
_runners_lock = threading.Lock()


def close_shared_runners() -> None:
    """Stop every reusable child (at exit: a child must not outlive its parent's shutdown)."""
    with _runners_lock:
        runners = list(_runners.values())
        _runners.clear()
    for runner in runners:
        runner.close()


atexit.register(close_shared_runners)


def shared_runner(*, seconds: float, memory_mb: int) -> BudgetRunner:
    """One runner per budget per process (children are reused across jobs and threads)."""
    key = (seconds, memory_mb)
    with _runners_lock:
        runner = _runners.get(key)
        if runner is None:
            runner = _runners[key] = BudgetRunner(seconds=seconds, memory_mb=memory_mb)
        return runner
