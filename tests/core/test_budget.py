"""The budget runner: a child that overruns is killed, the next call gets a fresh child, errors travel."""

from __future__ import annotations

import time

import pytest

from core.budget import BudgetCrashed, BudgetExceeded, BudgetRunner
from tests.support.budget_functions import allocate, boom, echo, spin


@pytest.fixture()
def runner() -> BudgetRunner:
    r = BudgetRunner(seconds=1.5, memory_mb=256)
    yield r
    r.close()


def test_a_result_comes_back_and_the_child_is_reused(runner: BudgetRunner) -> None:
    first = runner.run(echo, "a")
    second = runner.run(echo, "b")
    assert (first[0], second[0]) == ("a", "b")
    assert first[1] == second[1]  # same child pid


def test_an_overrun_is_killed_and_the_next_call_works(runner: BudgetRunner) -> None:
    started = time.monotonic()
    with pytest.raises(BudgetExceeded, match="processing budget exceeded"):
        runner.run(spin)
    assert time.monotonic() - started < 5
    assert runner.run(echo, "after")[0] == "after"


def test_an_exception_in_the_child_is_raised_here(runner: BudgetRunner) -> None:
    with pytest.raises(ValueError, match="bad input"):
        runner.run(boom)


def test_running_out_of_memory_is_a_clean_failure(runner: BudgetRunner) -> None:
    with pytest.raises(BudgetCrashed):
        runner.run(allocate, 1024)
    assert runner.run(echo, "still here")[0] == "still here"
