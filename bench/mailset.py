"""A deterministic mail set for the ingest benchmarks, built from ../shared/corpora.

Real mails (helpdesk samples, replies, CPython's and the mail gem's fixtures, malformed ones) and
bounces, in a fixed order. Copy i of a mail gets its own Message-ID (the original one is dropped),
so N mails are N distinct mails for us and for the peer: nothing is deduplicated away.
Run: .venv/bin/python bench/mailset.py --mails 200 --out /tmp/mailset   (writes 0000.eml ...)
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"
# (folder, glob, at most): bounces and automatic mail are part of the mix on purpose.
SOURCES: tuple[tuple[str, str, int], ...] = (
    ("django-helpdesk/tests/test_files", "*.eml", 10),
    ("mail-parser/tests/mails", "mail_*", 20),
    ("talon/tests/fixtures", "*.eml", 20),
    ("cpython_test_email/Lib/test/test_email/data", "msg_*.txt", 50),
    ("ruby-mail-gem/internal-deps/mail/spec/fixtures", "**/*.eml", 70),
    ("flufl.bounce/tests/data", "*.txt", 60),
)
MAX_BYTES = 512 * 1024
_MESSAGE_ID = re.compile(rb"^message-id:.*(?:\r?\n[ \t].*)*\r?\n", re.IGNORECASE | re.MULTILINE)


def base_mails() -> list[bytes]:
    """The distinct corpus mails, in a stable order (sorted paths), small enough for any server."""
    out: list[bytes] = []
    for folder, pattern, limit in SOURCES:
        files = sorted(p for p in (CORPORA / folder).glob(pattern) if p.is_file())
        taken = 0
        for path in files:
            data = path.read_bytes()
            lines = data.replace(b"\r\n", b"\n").split(b"\n")
            # Over 998 octets a line breaks RFC 5321 §4.5.3.1.6: the bare sink would refuse it.
            if not data or len(data) > MAX_BYTES or b"" not in lines or max(map(len, lines)) > 998:
                continue
            out.append(data)
            taken += 1
            if taken == limit:
                break
    return out


def _with_message_id(mail: bytes, index: int) -> bytes:
    head, sep, body = mail.replace(b"\r\n", b"\n").partition(b"\n\n")
    head = _MESSAGE_ID.sub(b"", head + b"\n").rstrip(b"\n")
    tag = hashlib.sha256(mail).hexdigest()[:12]
    head = f"Message-ID: <mailset-{index}-{tag}@bench.test>".encode() + b"\n" + head
    return (head + sep + body).replace(b"\n", b"\r\n")


def build(count: int) -> list[bytes]:
    """`count` distinct mails cycling through the corpus set (same input, same output)."""
    base = base_mails()
    return [_with_message_id(base[i % len(base)], i) for i in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mails", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for i, mail in enumerate(build(args.mails)):
        (args.out / f"{i:04d}.eml").write_bytes(mail)
    print(f"{args.mails} mails from {len(base_mails())} corpus mails in {args.out}")


if __name__ == "__main__":
    main()
