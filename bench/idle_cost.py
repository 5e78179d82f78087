"""What an idle install costs: `threadline up` on a fresh data directory, no mail, no clicks.

Measures, after a warm-up, over --seconds: growth of the embedded Redis files (append-only file
if any, and the RDB snapshot; bytes per minute), Redis commands per second (all, and the writes:
zadd = dramatiq's heartbeats), and the CPU share of the worker process (user + system time / wall
time, 100 % = one core).

Run: .venv/bin/python bench/idle_cost.py [--seconds 600] [--warmup 15]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.servers import free_port  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _redis_file_bytes(data_dir: Path) -> int:
    """appendonly.aof (Redis < 7), appendonlydir/ (Redis 7's multi-part AOF) and the RDB snapshot."""
    files = [*data_dir.glob("appendonly*"), *data_dir.glob("appendonlydir/*"), *data_dir.glob("*.rdb")]
    return sum(f.stat().st_size for f in files if f.is_file())


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def _child_pid(parent: int, arg: str) -> int:
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    for line in out.splitlines()[1:]:
        pid, ppid, args = line.split(None, 2)
        if int(ppid) == parent and args.split()[-1] == arg:
            return int(pid)
    raise LookupError(f"no {arg} process under {parent}")


def _commands(client: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): v["calls"] for k, v in client.info("commandstats").items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60, help="how long to measure (e.g. 600)")
    parser.add_argument("--warmup", type=float, default=15)
    opts = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="tlidle", dir="/tmp"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(THREADLINE_DATA_DIR=str(data_dir), THREADLINE_API_PORT=str(port), THREADLINE_SMTP_PORT=str(free_port()),
               THREADLINE_LOG_LEVEL="WARNING", THREADLINE_SUPPORT_ADDRESS="help@idle.test")
    up = subprocess.Popen([sys.executable, "-m", "core.cli", "up"], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        time.sleep(opts.warmup)
        worker = _child_pid(up.pid, "worker")
        client = redis.Redis(unix_socket_path=str(data_dir / "redis.sock"))
        size0, cpu0, cmd0, t0 = _redis_file_bytes(data_dir), _cpu_seconds(worker), _commands(client), time.monotonic()
        time.sleep(opts.seconds)
        size1, cpu1, cmd1, t1 = _redis_file_bytes(data_dir), _cpu_seconds(worker), _commands(client), time.monotonic()
        wall = t1 - t0
        writes = {k: (v - cmd0.get(k, 0)) / wall for k, v in cmd1.items() if k in {"zadd", "evalsha", "eval"}}
        calls = (sum(cmd1.values()) - sum(cmd0.values())) / wall
        print(f"idle for {wall:.0f} s: Redis files {size0} -> {size1} bytes, "
              f"{(size1 - size0) / wall * 60 / 1024:.1f} KiB/min; worker CPU {(cpu1 - cpu0) / wall * 100:.1f} %; "
              f"Redis calls/s {calls:.1f} (" + ", ".join(f"{k} {v:.1f}" for k, v in sorted(writes.items())) + ")")
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=30)


if __name__ == "__main__":
    main()
