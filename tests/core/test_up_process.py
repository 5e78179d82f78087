"""`threadline up` as a real process tree: start, serve, refuse a second `up`, stop on SIGTERM, restart on
the same data."""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import run_cli
from tests.support.servers import free_port

pytestmark = pytest.mark.slow


def _env(data_dir: Path, port: int, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(THREADLINE_DATA_DIR=str(data_dir), THREADLINE_API_PORT=str(port), THREADLINE_LOG_LEVEL="WARNING",
               THREADLINE_SMTP_PORT=str(smtp_port),
               THREADLINE_SUPPORT_ADDRESS="help@acme.test")
    return env


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "core.cli", "up"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"not ready in {timeout}s:\n{log.read_text()}")


def _stop(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    return code, time.monotonic() - started


def _no_process_uses(data_dir: Path) -> bool:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return str(data_dir) not in out


def test_up_serves_refuses_a_second_up_stops_cleanly_and_restarts_on_the_same_data() -> None:
    """One `up` lifecycle (each start is an initdb, migrations and every component: 20-50 s): it serves the API
    and SMTP, doctor sees it, a second `up` on its data dir exits 1 at once naming it, SIGTERM stops the whole
    tree, and a restart finds the data and does not bootstrap again."""
    data_dir = Path(tempfile.mkdtemp(prefix="tlup", dir="/tmp"))
    log = data_dir / "up.log"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    smtp_port = free_port()
    env = _env(data_dir, port, smtp_port)

    first = _start(env, log)
    try:
        _wait_ready(base, first, log)
        text = log.read_text()
        key = next(line.split(": ", 1)[1].strip() for line in text.splitlines() if "admin API key" in line)
        assert f"http://127.0.0.1:{port}" in text  # it says where it listens
        res = httpx.post(f"{base}/api/v1/tickets", headers={"Authorization": f"Bearer {key}"},
                         json={"subject": "Survives restarts", "customer_email": "dan@acme.test", "text": "hi"})
        assert res.status_code == 201, res.text
        # A customer mail through our SMTP server reaches a ticket via the outbox, Redis and a worker.
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.sendmail("erin@customer.test", ["help@acme.test"],
                            b"From: erin@customer.test\r\nTo: help@acme.test\r\nSubject: Mailed in\r\n"
                            b"Message-ID: <up1@customer.test>\r\n\r\nhello\r\n")
        headers = {"Authorization": f"Bearer {key}"}
        deadline = time.monotonic() + 20
        subjects: list[str] = []
        while time.monotonic() < deadline and "Mailed in" not in subjects:
            subjects = [t["subject"] for t in httpx.get(f"{base}/api/v1/tickets", headers=headers).json()["items"]]
            time.sleep(0.2)
        assert "Mailed in" in subjects, log.read_text()
        doctor = run_cli("doctor", env={**env, "DATABASE_URL": None, "REDIS_URL": None})
        assert (doctor.returncode, f"`threadline up` is running on {data_dir} (pid {first.pid})" in doctor.stdout,
                "all checks passed" in doctor.stdout) == (0, True, True), doctor.stdout + doctor.stderr
        # Regression: a second `up` printed the banner, then five `address already in use` tracebacks over 24 s.
        # The refusal comes before any server starts: no banner, no traceback (what it costs in time is the
        # CLI's imports, which a loaded CI machine can stretch past any bound worth asserting).
        again = subprocess.run([sys.executable, "-m", "core.cli", "up"], env=env, capture_output=True, text=True,
                               timeout=120)
        assert (again.returncode, f"pid {first.pid}" in again.stderr, again.stdout,
                "already in use" in again.stderr, "Traceback" in again.stderr) == (
            1, True, "", False, False), again.stderr
    except BaseException:  # a failed assertion must not leave `up` and its servers running
        _stop(first)
        raise
    code, seconds = _stop(first)
    assert (code, seconds < 15) == (0, True), log.read_text()
    assert _no_process_uses(data_dir), "a component or embedded server outlived `up`"

    second = _start(env, log)
    try:
        _wait_ready(base, second, log)
        tickets = httpx.get(f"{base}/api/v1/tickets", headers={"Authorization": f"Bearer {key}"}).json()["items"]
        assert sorted(t["subject"] for t in tickets) == ["Mailed in", "Survives restarts"]
        assert log.read_text().count("admin API key") == 1  # bootstrap did not run again
    finally:
        code, _ = _stop(second)
    assert code == 0
