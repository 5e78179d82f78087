"""The peer: django-helpdesk 2.6.1's own mail-to-ticket driver on the same mail set as
bench/ingest.py (c), in the same run, and the ratio.

django-helpdesk is installed from PyPI into a throwaway venv under /tmp (kept between runs); its
database is SQLite on tmpfs (/dev/shm: no durability, its best case). Its driver is
`helpdesk.email.process_email()` (what `manage.py get_email` runs) over a queue whose mail source is
a local directory holding the mail set as files (the driver deletes each file it turned into a
ticket). Then bench/ingest.py runs with the same --mails and we print both rates and the ratio.
Run: .venv/bin/python bench/peer.py [--mails 1000] [--clients 8]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import textwrap
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT / "bench"))  # after the repo root: bench/core.py must not shadow core

from mailset import build  # noqa: E402

VENV = Path("/tmp/threadline-peer-venv")
PACKAGE = "django-helpdesk==2.6.1"
LOGGING_TYPE = "none"
EXTRAS = "pinax-teams"  # its migrations depend on pinax_teams

SETTINGS = """
SECRET_KEY = "bench-only"
DEBUG = False
USE_TZ = True
SITE_ID = 1
ROOT_URLCONF = "urls"
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": "{db}"}}}}
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.messages", "django.contrib.staticfiles", "django.contrib.sites", "django.contrib.humanize",
    "rest_framework", "account", "pinax.invitations", "pinax.teams", "reversion", "helpdesk",
]
HELPDESK_TEAMS_MODE_ENABLED = False
TEMPLATES = [{{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
              "OPTIONS": {{"context_processors": []}}}}]
MEDIA_ROOT = "{media}"
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING = {{"version": 1, "disable_existing_loggers": False, "handlers": {{"e": {{"class": "logging.StreamHandler"}}}},
           "root": {{"level": "CRITICAL", "handlers": ["e"]}}}}
"""

DRIVER = """
import os, sys, time
sys.path.insert(0, "{project}")
os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from helpdesk.models import Queue, Ticket, FollowUp
Queue.objects.create(title="Help", slug="help", email_address="help@bench.test", allow_email_submission=True,
                     email_box_type="local", email_box_local_dir="{mails}", email_box_interval=0,
                     logging_type="{logging}")
import logging
from django.utils import encoding
from helpdesk.email import extract_email_metadata
from helpdesk.exceptions import DeleteIgnoredTicketException, IgnoreTicketException
queue, logger = Queue.objects.get(slug="help"), logging.getLogger("peer")
crashed = ignored = 0
started = time.perf_counter()
# helpdesk.email.process_queue's local-directory loop, one mail at a time, except that a mail its
# parser crashes on is counted and skipped: its own loop stops the whole queue at the first one.
for name in sorted(os.listdir("{mails}")):
    path = os.path.join("{mails}", name)
    with open(path, "rb") as f:  # its loop opens in text mode and dies on the first non-UTF-8 mail
        full_message = encoding.force_str(f.read(), errors="replace")
    try:
        ticket = extract_email_metadata(message=full_message, queue=queue, logger=logger)
    except (IgnoreTicketException, DeleteIgnoredTicketException):
        ignored += 1
        continue
    except Exception:
        crashed += 1
        continue
    if ticket:
        os.unlink(path)
elapsed = time.perf_counter() - started
print(f"RESULT {{elapsed}} {{Ticket.objects.count()}} {{FollowUp.objects.count()}} {{crashed}} {{ignored}}")
"""


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        venv.create(VENV, with_pip=True)
    check = subprocess.run([str(python), "-c", "import helpdesk, importlib.metadata as m; "
                            "print(m.version('django-helpdesk'))"], capture_output=True, text=True)
    if check.stdout.strip() != PACKAGE.split("==")[1]:
        subprocess.run([str(python), "-m", "pip", "install", "-q", PACKAGE, EXTRAS], check=True)
    return python


def run_peer(python: Path, mails: list[bytes]) -> tuple[float, str]:
    work = Path(tempfile.mkdtemp(prefix="tlpeer", dir="/dev/shm"))
    project, maildir = work / "project", work / "mails"
    project.mkdir()
    maildir.mkdir()
    (project / "settings.py").write_text(textwrap.dedent(SETTINGS.format(db=work / "db.sqlite3",
                                                                          media=work / "media")))
    (project / "urls.py").write_text(  # its mails link to tickets: its URLs must resolve
        "from django.urls import include, path\n"
        "urlpatterns = [path('helpdesk/', include('helpdesk.urls', namespace='helpdesk'))]\n"
    )
    for i, mail in enumerate(mails):
        (maildir / f"{i:05d}.eml").write_bytes(mail)
    out = subprocess.run([str(python), "-c", DRIVER.format(project=project, mails=maildir, logging=LOGGING_TYPE)],
                         capture_output=True, text=True, cwd=project)
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"the peer driver failed:\n{out.stderr[-3000:]}")
    elapsed, tickets, followups, crashed, ignored = line.split()[1:]
    rate = len(mails) / float(elapsed)
    return rate, (f"{tickets} tickets, {followups} follow-ups, {crashed} mails its parser crashed on, "
                  f"{ignored} ignored, in {float(elapsed):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    python = ensure_venv()
    # The same mails bench/ingest.py sends in (c): build() is deterministic.
    mails = build(100 + 2 * args.mails)[100 + args.mails:]
    peer, detail = run_peer(python, mails)
    print(f"peer: django-helpdesk 2.6.1 get_email driver, SQLite on tmpfs: {peer:8.0f} mails/s ({detail})")
    ours = subprocess.run([sys.executable, str(ROOT / "bench" / "ingest.py"), "--mails", str(args.mails),
                           "--clients", str(args.clients)], capture_output=True, text=True, cwd=ROOT)
    print(ours.stdout, end="")
    found = re.search(r"\(c\)[^:]*:\s*([\d.]+) mails/s", ours.stdout)
    if found is None:
        raise SystemExit(f"bench/ingest.py gave no (c) figure:\n{ours.stderr[-3000:]}")
    c = float(found.group(1))
    print(f"ratio Threadline (c) / peer: {c / peer:.2f}  (goal >= 2)")


if __name__ == "__main__":
    main()
