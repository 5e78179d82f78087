"""Run `threadline ...` in the test process: the real command tree (plugins included), settings from
the environment the call is given. A subprocess per call re-imports everything (3-5 s each); keep
those for the tests that are about the process boundary."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from typer.testing import CliRunner

from core.cli.main import build_cli
from core.registry import Registry, load_plugins


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: Mapping[str, str | None], stdin: str | None = None) -> Ran:
    """`threadline ARGS` with `env` laid over os.environ for the call (None unsets a name)."""
    with _logging_restored():
        result = CliRunner().invoke(build_cli(load_plugins(Registry())), list(args), env=env, input=stdin,
                                    catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


@contextmanager
def _logging_restored() -> Iterator[None]:
    """A command configures logging for its process (root handler to the captured stderr, levels); the
    tests after it in this process get the logging they had, not a handler on a closed stream."""
    loggers = [logging.getLogger(), *(lg for lg in logging.Logger.manager.loggerDict.values()
                                      if isinstance(lg, logging.Logger))]
    saved = [(lg, lg.handlers[:], lg.level, lg.filters[:]) for lg in loggers]
    try:
        yield
    finally:
        for lg, handlers, level, filters in saved:
            lg.handlers[:], lg.filters[:] = handlers, filters
            lg.setLevel(level)
