"""A worker process for fault tests: runs one outbox job and SIGKILLs itself at a named step
(an outbound mail's steps, or the steps from a customer message to its one draft card).

Started as a fresh interpreter (`python -m tests.support.fault_worker SETTINGS_PICKLE DB_URL
OUTBOX_ID KILL_POINT`), never forked from the threaded test process (a fork can inherit a lock
some other thread held and hang). The kill point is armed inside this child only. Many runs go
through `--serve SETTINGS_PICKLE DB_URL`: a single-threaded fork server that pays the imports once.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from core import plugin as core_plugin
from core.db.session import make_engine, make_session_factory
from core.jobs import lease as leases
from core.jobs.runner import run_outbox_job
from core.registry import Registry, load_plugins
from core.tickets import drafts
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


def _keyed_post(*, answered: bool) -> None:
    """Die at the Slack post that carries the draft card's client key (not the thread's other posts):
    before it is sent, or once Slack has answered it (its ts not recorded)."""
    from slack_sdk import WebClient

    original = WebClient.chat_postMessage

    def post(self: WebClient, **kwargs: Any) -> Any:
        card = "slack.draft_card:" in str((kwargs.get("metadata") or {}).get("event_payload"))
        if card and not answered:
            _die()
        answer = original(self, **kwargs)
        if card:
            _die()
        return answer

    WebClient.chat_postMessage = post  # type: ignore[method-assign]


# The draft: `knowledge.draft` makes the row, then `slack.draft_card` posts it.
DRAFT_KILL_POINTS: dict[str, Callable[[], None]] = {
    # knowledge.draft: the draft row written, its transaction not committed
    "draft_before_commit": lambda: setattr(drafts, "propose", _after(drafts.propose)),
    # knowledge.draft: draft and key committed, the outbox row not finished
    "draft_after_commit": lambda: setattr(leases, "finish", _die),
    # slack.draft_card: the post's intent committed, Slack not called
    "card_before_post": lambda: _keyed_post(answered=False),
    # slack.draft_card: Slack posted the card, its ts not recorded
    "card_after_post": lambda: _keyed_post(answered=True),
}


# Draft runs take a longer lease: the worker's heartbeat must not lapse on a loaded machine (a
# lapsed lease is a presumed-dead worker, which is not what these tests kill).
DRAFT_LEASE = timedelta(seconds=1)


def _slow_answer() -> None:
    """knowledge.draft takes three leases to answer: the heartbeat must keep the row."""
    import time

    from knowledge.service import Knowledge

    original = Knowledge.answer

    def answer(self: Knowledge, *args: Any, **kwargs: Any) -> Any:
        time.sleep(DRAFT_LEASE.total_seconds() * 3)
        return original(self, *args, **kwargs)

    Knowledge.answer = answer  # type: ignore[method-assign]


SLOW_POINTS: dict[str, Callable[[], None]] = {"slow_answer": _slow_answer}


def _run_one(settings: Any, url: str, outbox_id: int, kill_point: str) -> None:
    registry = Registry()
    if kill_point in KILL_POINTS:
        core_plugin.register(registry)
        outbound_plugin.register(registry)
        KILL_POINTS[kill_point]()
        lease = LEASE
    else:  # the draft path runs with every plugin, as a real worker does
        load_plugins(registry)
        {**DRAFT_KILL_POINTS, **SLOW_POINTS}[kill_point]()
        lease = DRAFT_LEASE
    factory = make_session_factory(make_engine(url, pool_size=2))
    result = run_outbox_job(outbox_id, settings=settings, factory=factory, registry=registry, lease=lease)
    print(f"result {result.value}", flush=True)  # what the run came to when no kill point fired
    os._exit(0 if kill_point in SLOW_POINTS else 3)  # 3: the kill point did not fire


def _serve(settings: Any, url: str) -> None:
    """Fork server: import everything once, then fork one single-use worker per stdin line
    `OUTBOX_ID KILL_POINT` and answer `exit STATUS` (-9: SIGKILLed). This process starts no
    threads and opens no connection, so forking it is safe; each worker connects on its own."""
    load_plugins(Registry())
    import knowledge.draft_job  # noqa: F401 - the job's heavy imports, done once

    assert threading.active_count() == 1, "a fork server must not run threads"
    print("ready", flush=True)
    for line in sys.stdin:
        outbox_id, kill_point = line.split()
        pid = os.fork()
        if pid == 0:
            _run_one(settings, url, int(outbox_id), kill_point)
        _, status = os.waitpid(pid, 0)
        code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        print(f"exit {code}", flush=True)


def main() -> None:
    if sys.argv[1] == "--serve":
        settings_path, url = sys.argv[2:4]
    else:
        settings_path, url, outbox_id, kill_point = sys.argv[1:5]
    with open(settings_path, "rb") as f:
        settings = pickle.load(f)  # noqa: S301 - written by the test that started us
    if sys.argv[1] == "--serve":
        _serve(settings, url)
    else:
        _run_one(settings, url, int(outbox_id), kill_point)


if __name__ == "__main__":
    main()
