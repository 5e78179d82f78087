"""The child side of ``core/budget.py``: read (fn, args, kwargs) frames, answer result frames."""

from __future__ import annotations

import sys
from typing import Any

from core.budget import BudgetCrashed, read_frame, write_frame


def _limit_memory(memory_mb: int) -> None:
    try:
        import resource

        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):  # not on this platform: the time budget still holds
        pass


def main() -> None:
    _limit_memory(int(sys.argv[1]))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print() must not corrupt the frame stream
    while True:
        try:
            fn, args, kwargs = read_frame(stdin)
        except EOFError:
            return
        try:
            result: tuple[str, Any] = ("ok", fn(*args, **kwargs))
        except MemoryError:
            result = ("err", BudgetCrashed("out of memory while processing"))
        except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
            result = ("err", exc)
        try:
            write_frame(stdout, result)
        except Exception as exc:  # noqa: BLE001 - an unpicklable result or exception
            write_frame(stdout, ("err", RuntimeError(f"{type(exc).__name__}: {exc}")))


if __name__ == "__main__":
    main()
