"""A worker process for the Slack fault tests: runs one outbox job and SIGKILLs itself at a named
step of a thread post.

Started as a fresh interpreter (`python -m tests.bots.slack.fault_worker SETTINGS_PICKLE DB_URL
OUTBOX_ID KILL_POINT`), like tests/support/fault_worker.py. The kill points wrap slack_sdk's
chat.postMessage (the wire call), not our code: the post either never leaves or has been answered.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any

from slack_sdk import WebClient

from core.db.session import make_engine, make_session_factory
from core.jobs.runner import run_outbox_job
from core.registry import Registry, load_plugins
from tests.support.fault_worker import LEASE


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_at_post(number: int, *, answered: bool) -> None:
    """Die at the `number`th chat.postMessage: before it is sent, or once Slack has answered it."""
    original = WebClient.chat_postMessage
    calls = [0]

    def post(self: WebClient, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] == number and not answered:
            _die()
        answer = original(self, **kwargs)
        if calls[0] == number:
            _die()
        return answer

    WebClient.chat_postMessage = post  # type: ignore[method-assign]


KILL_POINTS = {
    "before_card_post": lambda: _kill_at_post(1, answered=False),  # the card's intent committed, nothing sent
    "after_card_post": lambda: _kill_at_post(1, answered=True),  # the card is in Slack, its anchor not committed
    "after_message_post": lambda: _kill_at_post(2, answered=True),  # the customer's message posted, not recorded
}


def main() -> None:
    settings_path, url, outbox_id, kill_point = sys.argv[1:5]
    with open(settings_path, "rb") as f:
        settings = pickle.load(f)  # noqa: S301 - written by the test that started us
    factory = make_session_factory(make_engine(url, pool_size=1))
    KILL_POINTS[kill_point]()
    run_outbox_job(int(outbox_id), settings=settings, factory=factory, registry=load_plugins(Registry()), lease=LEASE)
    os._exit(3)  # not reached when the kill point fired


if __name__ == "__main__":
    main()
