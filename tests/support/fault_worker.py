"""A worker process for fault tests: runs one outbox job and SIGKILLs itself at a named step.

Started as a fresh interpreter (`python -m tests.support.fault_worker SETTINGS_PICKLE DB_URL
OUTBOX_ID KILL_POINT`), never forked from the threaded test process (a fork can inherit a lock
some other thread held and hang). The kill point is armed inside this child only.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core import plugin as core_plugin
from core.db.session import make_engine, make_session_factory
from core.jobs import lease as leases
from core.jobs.runner import run_outbox_job
from core.registry import Registry
from inbound.email import outbound, outbound_plugin

LEASE = timedelta(milliseconds=300)


def _die(*_args: Any, **_kwargs: Any) -> Any:
    os.kill(os.getpid(), signal.SIGKILL)


def _after(original: Callable[..., Any]) -> Callable[..., Any]:
    def call_then_die(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        _die()

    return call_then_die


KILL_POINTS: dict[str, Callable[[], None]] = {
    # inside the intent transaction, before `sending` commits
    "before_intent": lambda: setattr(outbound, "relay_from_settings", _die),
    # `sending` committed, the SMTP session not started
    "before_smtp": lambda: setattr(outbound, "send_letter", _die),
    # the relay answered 250, `sent` not committed
    "after_250": lambda: setattr(outbound, "send_letter", _after(outbound.send_letter)),
    # `sent` committed, the outbox row not finished
    "after_commit": lambda: setattr(leases, "finish", _die),
}


def main() -> None:
    settings_path, url, outbox_id, kill_point = sys.argv[1:5]
    with open(settings_path, "rb") as f:
        settings = pickle.load(f)  # noqa: S301 - written by the test that started us
    registry = Registry()
    core_plugin.register(registry)
    outbound_plugin.register(registry)
    factory = make_session_factory(make_engine(url, pool_size=1))
    KILL_POINTS[kill_point]()
    run_outbox_job(int(outbox_id), settings=settings, factory=factory, registry=registry, lease=LEASE)
    os._exit(3)  # not reached when the kill point fired


if __name__ == "__main__":
    main()
