"""Run `threadline ...` in the test process: the real command tree (plugins included), settings from
the environment the call is given. A subprocess per call re-imports everything (3-5 s each); keep
those for the tests that are about the process boundary."""

from __future__ import annotations

from collections.abc import Mapping
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
    result = CliRunner().invoke(build_cli(load_plugins(Registry())), list(args), env=env, input=stdin,
                                catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)
