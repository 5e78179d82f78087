"""Module-level functions the budget tests run in a child process (they must be importable there)."""

from __future__ import annotations

import os


def echo(value: str) -> tuple[str, int]:
    return value, os.getpid()


def spin() -> None:
    while True:  # a pure-Python loop holds the GIL, like a quadratic regex would
        pass


def boom() -> None:
    raise ValueError("bad input")


def allocate(megabytes: int) -> int:
    return len(bytearray(megabytes * 1024 * 1024))
