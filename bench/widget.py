"""Widget socket fan-out on one API process: N concurrent visitor sockets, then replies' hints.

Measures (1) the API process's memory per connected socket and (2) the fan-out latency of an
agent reply's hint — from `widget.deliver`'s Redis publish to the visitor's socket receiving it —
p50/p95/max over S samples while all N sockets stay connected. Conversations and tokens are
created directly in the database (the per-IP start limit would otherwise throttle one client).
Run: .venv/bin/python bench/widget.py [--sockets 2000] [--samples 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402
from sqlalchemy import update  # noqa: E402

from bench.ingest import free_port, wait_port  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.db.session import system_scope, tenant_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.models import Inbox  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from inbound.widget import fanout, tokens  # noqa: E402
from inbound.widget.models import WidgetConversation  # noqa: E402

ORIGIN, SECRET = "http://bench.test", "bench-widget-secret"


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def connect(url: str, token: str) -> websockets.ClientConnection:
    ws = await websockets.connect(url, origin=websockets.Origin(ORIGIN), max_queue=64, open_timeout=30)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await ws.recv()) == {"type": "ready"}
    return ws


async def run(url: str, tokens_by_conv: dict[uuid.UUID, str], redis_url: str, samples: int, pid: int) -> None:
    before = rss_kib(pid)
    sockets: dict[uuid.UUID, websockets.ClientConnection] = {}
    items = list(tokens_by_conv.items())
    started = time.monotonic()
    for i in range(0, len(items), 200):
        batch = items[i:i + 200]
        opened = await asyncio.gather(*(connect(url, tok) for _, tok in batch))
        sockets.update({conv: ws for (conv, _), ws in zip(batch, opened, strict=True)})
    took = time.monotonic() - started
    await asyncio.sleep(1)
    after = rss_kib(pid)
    latencies: list[float] = []
    for n in range(samples):
        conv = random.choice(items)[0]
        sent = time.perf_counter()
        await asyncio.to_thread(fanout.publish, redis_url, conversation_id=conv, seq=n + 1)
        got = json.loads(await asyncio.wait_for(sockets[conv].recv(), timeout=10))
        latencies.append((time.perf_counter() - sent) * 1000)
        assert got == {"type": "message", "seq": n + 1}
    print(f"{len(sockets)} visitor sockets on one API process (opened in {took:.1f} s)")
    print(f"  memory: API RSS {before // 1024} MiB → {after // 1024} MiB, "
          f"{(after - before) / max(1, len(sockets)):.1f} KiB per connection")
    print(f"  reply hint fan-out (publish → visitor socket), {samples} samples: p50 {pct(latencies, 50):.1f} ms"
          f"  p95 {pct(latencies, 95):.1f} ms  max {max(latencies):.1f} ms")
    await asyncio.gather(*(ws.close() for ws in sockets.values()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.sockets + 1024)), hard))
    data = Path(tempfile.mkdtemp(prefix="tlbw", dir="/tmp"))
    settings = Settings(THREADLINE_DATA_DIR=data, THREADLINE_SECRET_KEY=SECRET)
    infra = start_infrastructure(settings)
    proc: subprocess.Popen[bytes] | None = None
    try:
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, pool_size=2)
        upgrade(rt.engine)
        with system_scope(rt.factory) as session:
            result = bootstrap(session=session, support_address="help@bench.test", slack_channel=None)
            session.execute(update(Inbox).values(widget_config={"allowed_origins": [ORIGIN]}))
        tenant_id, inbox_id = result.tenant.id, result.inbox.id
        key = tokens.token_key(settings)
        convs: dict[uuid.UUID, str] = {}
        with tenant_scope(rt.factory, tenant_id) as session:
            for _ in range(args.sockets):
                conv = WidgetConversation(id=uuid.uuid4(), tenant_id=tenant_id, inbox_id=inbox_id, token_version=1,
                                          last_seq=0)
                session.add(conv)
                convs[conv.id] = tokens.issue(key, conversation_id=conv.id, inbox_id=inbox_id, version=1)
        port = free_port()
        env = {**os.environ, "DATABASE_URL": infra.database_url, "REDIS_URL": infra.redis_url or "",
               "THREADLINE_DATA_DIR": str(data), "THREADLINE_LOG_LEVEL": "WARNING", "THREADLINE_SECRET_KEY": SECRET,
               "THREADLINE_API_PORT": str(port), "THREADLINE_PUBLIC_URL": f"http://127.0.0.1:{port}"}
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", "api"], env=env, cwd=ROOT)
        wait_port(port)
        url = f"ws://127.0.0.1:{port}/widget/v1/socket?inbox={inbox_id}"
        asyncio.run(run(url, convs, infra.redis_url or "", args.samples, proc.pid))
        rt.close()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        infra.stop()


if __name__ == "__main__":
    main()
