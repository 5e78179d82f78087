"""Run our SMTP server in a thread on a free port for a test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.runtime import Runtime
from inbound.smtp.server import serve_smtp
from tests.support.servers import free_port


@dataclass
class RunningSmtp:
    host: str
    port: int


@contextmanager
def running_smtp(runtime: Runtime) -> Iterator[RunningSmtp]:
    port = free_port()
    runtime.settings.smtp_port = port
    stop, ready = threading.Event(), threading.Event()
    thread = threading.Thread(target=serve_smtp, args=(runtime,), kwargs={"stop": stop, "ready": ready}, daemon=True)
    thread.start()
    assert ready.wait(10), "SMTP server did not start"
    try:
        yield RunningSmtp("127.0.0.1", port)
    finally:
        stop.set()
        thread.join(timeout=10)
