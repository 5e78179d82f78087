"""A real relay in front of Threadline: a private Postfix instance relays a burst of the real
corpus mails to our SMTP server, and we count how many reached raw_inbound and how fast.

  corpus mail --SMTP burst--> Postfix (127.0.0.1:P) --smtp:[127.0.0.1]:T--> threadline smtp --> raw_inbound

Postfix runs from its own config, queue and data directories under a temporary directory
(never the system instance), listens on loopback only and relays only the bench domain; its
log goes to a file there (postlogd), which tells sent/deferred/bounced per mail. Threadline's
SMTP server runs with default limits (loopback is a trusted relay network by default); each
mail gets its own envelope sender so every raw_inbound row is matched to its corpus file.
Postfix is stopped and everything is removed afterwards, also on Ctrl-C.

Needs Debian's postfix (`DEBIAN_FRONTEND=noninteractive apt-get install -y postfix`; the
system instance need not run) and root, as Postfix's master does.
Run: .venv/bin/python bench/relay.py [--clients 8] [--timeout 600] [--pattern '*.eml' ...] [--dump DIR]
  All RFC 822 mails of the corpora (~300): --pattern '*.eml' --pattern 'msg_*.txt' --pattern 'mail_*' \\
      --pattern 'flufl.bounce/**/*.txt'
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from core.db.migrate import upgrade  # noqa: E402
from core.db.session import system_scope  # noqa: E402
from core.infra.stack import start_infrastructure  # noqa: E402
from core.runtime import build_runtime  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.tenancy.service import bootstrap  # noqa: E402
from core.tickets.models import RawInbound  # noqa: E402

DOMAIN = "bench.test"
ADDRESS = f"help@{DOMAIN}"
LOOPBACK = "127.0.0.1"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"

# Only what a relay needs; no chroot (the queue is a temp dir without a chroot jail).
MASTER_CF = """\
{port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# Postfix's defaults otherwise (concurrency, connection cache, retry backoff): a stock relay.
MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {base}/spool
data_directory = {base}/lib
syslog_name = postfix-bench
maillog_file = {base}/maillog
maillog_file_prefixes = {base}
myhostname = relay.{domain}
mydomain = relay.{domain}
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled in this bench
default_transport = error:5.1.2 this bench relays only {domain}
relay_domains = {domain}
transport_maps = inline:{{{domain}=smtp:[{loopback}]:{threadline_port}}}
inet_interfaces = {loopback}
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_recipient_restrictions =
smtpd_peername_lookup = no
smtpd_tls_security_level = none
smtp_tls_security_level = none
message_size_limit = 52428800
notify_classes =
biff = no
"""

LOG_STATUS = re.compile(r" postfix-bench/\w+\[\d+\]: (\w+): to=<" + re.escape(ADDRESS) + r">.*? status=(\w+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((LOOPBACK, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def corpus_files(root: Path, patterns: list[str]) -> list[Path]:
    found = {p for pattern in patterns for p in root.rglob(pattern) if p.is_file()}
    return sorted(found)


def sender_for(i: int) -> str:
    return f"corpus-{i}@sender.invalid"  # outside relay_domains: Postfix's own bounces stay local


class Postfix:
    """A private Postfix instance under `base`: config, queue, data and log of its own."""

    def __init__(self, base: Path, port: int, threadline_port: int) -> None:
        self.base, self.port = base, port
        self.conf = base / "etc"
        self.conf.mkdir(parents=True)
        for sub in ("spool", "lib"):
            (base / sub).mkdir()
        shutil.chown(base / "lib", "postfix")
        (self.conf / "main.cf").write_text(MAIN_CF.format(
            base=base, domain=DOMAIN, loopback=LOOPBACK, threadline_port=threadline_port))
        (self.conf / "master.cf").write_text(MASTER_CF.format(port=f"{LOOPBACK}:{port}"))
        self.log = base / "maillog"
        self.started = False

    def _postfix(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([POSTFIX, "-c", str(self.conf), *args], capture_output=True, text=True, check=check,
                              timeout=120, env={**os.environ, "MAIL_CONFIG": str(self.conf)})

    def start(self) -> None:
        # set-permissions creates the queue directories with Postfix's owners and modes.
        self._postfix("set-permissions")
        self.started = True
        self._postfix("start")
        wait_port(self.port)

    def stop(self) -> None:
        if not self.started:
            return
        pid_file = self.base / "spool" / "pid" / "master.pid"
        pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
        if self._postfix("stop", check=False).returncode != 0:
            self._postfix("abort", check=False)
        deadline = time.monotonic() + 20  # master's children exit with it
        while pid is not None and Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid is not None and Path(f"/proc/{pid}").exists():
            self._postfix("abort", check=False)
        self.started = False

    def outcomes(self) -> Counter[str]:
        """Final status of each queued mail per the log: sent, deferred (so far), bounced."""
        last: dict[str, str] = {}
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        for m in LOG_STATUS.finditer(text):
            last[m.group(1)] = m.group(2)
        return Counter(last.values())

    def deferred_reasons(self, limit: int = 5) -> list[str]:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return [line for line in text.splitlines() if "status=deferred" in line or "status=bounced" in line][:limit]


def inject(port: int, mails: list[bytes], clients: int) -> tuple[float, dict[int, float], dict[int, str]]:
    """Burst every mail into Postfix over `clients` connections; seconds, when each was accepted, refusals."""
    accepted_at: dict[int, float] = {}
    refused: dict[int, str] = {}
    per_client = [list(range(c, len(mails), clients)) for c in range(clients)]

    def run(indices: list[int]) -> None:
        with smtplib.SMTP(LOOPBACK, port, timeout=120) as client:
            for i in indices:
                try:
                    client.sendmail(sender_for(i), [ADDRESS], mails[i])
                    accepted_at[i] = time.time()
                except smtplib.SMTPException as exc:
                    refused[i] = f"{type(exc).__name__}: {exc}"
                    client.rset()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(run, per_client))
    return time.perf_counter() - started, accepted_at, refused


def arrivals(rt) -> dict[str, datetime]:  # type: ignore[no-untyped-def]
    """raw_inbound rows by envelope sender: when each was committed."""
    with system_scope(rt.factory) as session:
        rows = session.execute(select(RawInbound.envelope, RawInbound.received_at)).all()
    return {str((env or {}).get("mail_from", "")): at for env, at in rows}


def payloads(rt) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    with system_scope(rt.factory) as session:
        rows = session.execute(select(RawInbound.envelope, RawInbound.payload)).all()
    return {str((env or {}).get("mail_from", "")): bytes(payload) for env, payload in rows}


def on_the_wire(mail: bytes) -> bytes:
    """A corpus file as a mail client sends it: CRLF line ends, ending in CRLF (smtplib sends
    bytes as they are, and Postfix would read a bare LF as a line end of its own)."""
    wire = re.sub(rb"\r?\n", b"\r\n", mail)
    return wire if wire.endswith(b"\r\n") else wire + b"\r\n"


def body(wire: bytes) -> bytes:
    if wire.startswith(b"\r\n"):
        return wire[2:]
    head, sep, rest = wire.partition(b"\r\n\r\n")
    return rest if sep else b""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", type=Path,
                        default=Path(os.environ.get("THREADLINE_CORPORA", "/work/shared/corpora")))
    parser.add_argument("--pattern", action="append", help="file name glob under --corpora (default: *.eml)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent SMTP connections into Postfix")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for every mail to arrive")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (Postfix config and log)")
    parser.add_argument("--dump", type=Path, help="write what was stored for each changed body into this dir")
    args = parser.parse_args()
    if not Path(POSTFIX).exists():
        sys.exit("postfix is not installed: DEBIAN_FRONTEND=noninteractive apt-get install -y postfix")
    if os.geteuid() != 0:
        sys.exit("Postfix's master must start as root")
    files = corpus_files(args.corpora, args.pattern or ["*.eml"])
    if not files:
        sys.exit(f"no mails under {args.corpora}")
    mails = [on_the_wire(f.read_bytes()) for f in files]

    # SIGTERM unwinds like Ctrl-C, so the finally below always stops Postfix and the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    base = Path(tempfile.mkdtemp(prefix="tlrelay", dir="/tmp"))
    base.chmod(0o755)  # Postfix's daemons run as user postfix and read their config here
    data = base / "threadline"
    data.mkdir()
    settings = Settings(THREADLINE_DATA_DIR=data)
    infra = None
    smtp: subprocess.Popen[bytes] | None = None
    postfix: Postfix | None = None
    try:
        infra = start_infrastructure(settings)
        rt = build_runtime(settings, database_url=infra.database_url, redis_url=infra.redis_url, pool_size=2)
        upgrade(rt.engine)
        with system_scope(rt.factory) as session:
            bootstrap(session=session, support_address=ADDRESS, slack_channel=None)
        threadline_port = free_port()
        env = {**os.environ, "DATABASE_URL": infra.database_url, "REDIS_URL": infra.redis_url or "",
               "THREADLINE_DATA_DIR": str(data), "THREADLINE_LOG_LEVEL": "WARNING",
               "THREADLINE_SMTP_HOST": LOOPBACK, "THREADLINE_SMTP_PORT": str(threadline_port)}
        smtp = subprocess.Popen([sys.executable, "-m", "core.cli", "smtp"], env=env, cwd=ROOT)
        wait_port(threadline_port)
        postfix = Postfix(base, free_port(), threadline_port)
        postfix.start()
        size = sum(len(m) for m in mails)
        print(f"{len(mails)} corpus mails ({size / 1024:.0f} KiB) from {args.corpora} {args.pattern or ['*.eml']}")
        print(f"Postfix {LOOPBACK}:{postfix.port} -> threadline smtp {LOOPBACK}:{threadline_port} "
              f"(default limits), {args.clients} injecting connections")

        t0 = time.time()
        inject_s, accepted_at, refused = inject(postfix.port, mails, args.clients)
        print(f"  injected into Postfix   : {len(accepted_at)}/{len(mails)} accepted in {inject_s:.2f}s "
              f"({len(accepted_at) / inject_s:.0f} mails/s), {len(refused)} refused by Postfix")
        for i, why in list(refused.items())[:5]:
            print(f"    refused {files[i]}: {why}")

        deadline = time.monotonic() + args.timeout
        seen: dict[str, datetime] = {}
        while time.monotonic() < deadline:
            seen = arrivals(rt)
            outcomes = postfix.outcomes()
            if len(seen) >= len(accepted_at) and sum(outcomes.values()) >= len(accepted_at):
                break
            time.sleep(0.2)
        seen = arrivals(rt)
        outcomes = postfix.outcomes()
        wanted = {sender_for(i): i for i in accepted_at}
        reached = {s: at for s, at in seen.items() if s in wanted}
        latencies = sorted(at.timestamp() - accepted_at[wanted[s]] for s, at in reached.items())
        last = max((at.timestamp() for at in reached.values()), default=t0)
        span = max(last - t0, 1e-9)
        print(f"  reached raw_inbound     : {len(reached)}/{len(accepted_at)} in {span:.2f}s "
              f"from first injection ({len(reached) / span:.0f} mails/s end to end)")
        if latencies:
            print(f"  per-mail relay latency  : p50 {statistics.median(latencies):.2f}s  "
                  f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.2f}s  max {latencies[-1]:.2f}s")
        print(f"  Postfix delivery status : {dict(outcomes) or 'none logged'}")
        for line in postfix.deferred_reasons():
            print(f"    {line}")
        stored = payloads(rt)
        changed = [wanted[s] for s in reached if body(stored[s]) != body(mails[wanted[s]])]
        print(f"  body byte-identical     : {len(reached) - len(changed)}/{len(reached)} "
              "(headers aside: Postfix adds Received and may add Message-ID/Date)")
        for i in sorted(changed)[:10]:
            longest = max((len(line) for line in mails[i].splitlines()), default=0)
            print(f"    body changed: {files[i]} ({len(mails[i])} bytes, longest line {longest})")
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            for i in changed:
                (args.dump / f"{i}-{files[i].name}").write_bytes(stored[sender_for(i)])
        missing = sorted(set(wanted) - set(reached), key=lambda s: wanted[s])
        for s in missing[:10]:
            print(f"    missing: {files[wanted[s]]}")
        rt.close()
    finally:
        if postfix is not None:
            postfix.stop()
        if smtp is not None and smtp.poll() is None:
            smtp.terminate()
            try:
                smtp.wait(timeout=15)
            except subprocess.TimeoutExpired:
                smtp.kill()
        if infra is not None:
            infra.stop()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
