"""`threadline up` starts one worker process per core by default; only the first relays the outbox."""

from __future__ import annotations

import os

from core.cli.up import _copies, worker_processes
from core.registry import Component
from core.settings import Settings

WORKER = Component(name="worker", command=("worker",), describe=lambda s: "")


def test_default_is_one_worker_process_per_core() -> None:
    assert worker_processes(Settings()) == max(1, os.cpu_count() or 1)


def test_three_workers_and_only_the_first_runs_the_relay() -> None:
    copies = _copies(WORKER, Settings(THREADLINE_WORKER_PROCESSES=3))
    assert [c.command for c in copies] == [("worker",), ("worker", "--no-relay"), ("worker", "--no-relay")]


def test_other_components_run_once() -> None:
    smtp = Component(name="smtp", command=("smtp",), describe=lambda s: "")
    assert _copies(smtp, Settings(THREADLINE_WORKER_PROCESSES=3)) == [smtp]
