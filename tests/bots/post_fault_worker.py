"""A worker process for the post-once fault tests on both surfaces: runs one outbox job and SIGKILLs
itself at the Nth keyed post on the wire, before it is sent or once it has been answered.

Started as a fresh interpreter (`python -m tests.bots.post_fault_worker SETTINGS_PICKLE DB_URL OUTBOX_ID
before|after:N`), like tests/support/fault_worker.py. The kill points wrap the libraries' wire calls,
not our code: Slack's chat.postMessage carrying metadata (a client key), and a Bot Connector POST that
creates a thread or an activity (httpx).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
from typing import Any

import httpx
from slack_sdk import WebClient

from core.db.session import make_engine, make_session_factory
from core.jobs.runner import run_outbox_job
from core.registry import Registry, load_plugins
from tests.support.fault_worker import DRAFT_LEASE


def _arm(number: int, *, answered: bool) -> None:
    calls = [0]

    def around(call: Any) -> Any:
        calls[0] += 1
        if calls[0] == number and not answered:
            os.kill(os.getpid(), signal.SIGKILL)
        answer = call()
        if calls[0] == number:
            os.kill(os.getpid(), signal.SIGKILL)
        return answer

    slack_post = WebClient.chat_postMessage

    def post(self: WebClient, **kwargs: Any) -> Any:
        if not kwargs.get("metadata"):
            return slack_post(self, **kwargs)
        return around(lambda: slack_post(self, **kwargs))

    connector_request = httpx.Client.request

    def request(self: httpx.Client, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:
        if method != "POST" or "/v3/conversations" not in str(url):
            return connector_request(self, method, url, *args, **kwargs)
        return around(lambda: connector_request(self, method, url, *args, **kwargs))

    WebClient.chat_postMessage = post  # type: ignore[method-assign]
    httpx.Client.request = request  # type: ignore[method-assign]


def main() -> None:
    settings_path, url, outbox_id, point = sys.argv[1:5]
    with open(settings_path, "rb") as f:
        settings = pickle.load(f)  # noqa: S301 - written by the test that started us
    factory = make_session_factory(make_engine(url, pool_size=2))
    registry = load_plugins(Registry())
    when, number = point.split(":")
    _arm(int(number), answered=when == "after")
    run_outbox_job(int(outbox_id), settings=settings, factory=factory, registry=registry, lease=DRAFT_LEASE)
    os._exit(3)  # not reached when the kill point fired


if __name__ == "__main__":
    main()
