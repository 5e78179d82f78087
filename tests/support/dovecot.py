"""A throwaway Dovecot IMAP server on loopback for end-to-end tests (Debian's dovecot-imapd).

Everything lives in one temporary directory: config, sockets, logs, maildirs and (optionally) a
self-signed certificate. Any user name logs in with the server's password (a static passdb), so
each test takes a fresh, empty mailbox. Run as root, mail is stored as `nobody`; run as anyone else,
Dovecot runs rootless as that user. It listens on free ports (plain/STARTTLS and implicit TLS).
"""

from __future__ import annotations

import datetime
import grp
import ipaddress
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port

DOVECOT = Path("/usr/sbin/dovecot")
DOVEADM = Path("/usr/bin/doveadm")


def dovecot_missing_reason() -> str | None:
    if not DOVECOT.exists():
        return "Dovecot is not installed (apt-get install dovecot-imapd; scripts/test does it when run as root)"
    return None


@dataclass(frozen=True)
class MailUser:
    name: str
    password: str


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost; the test trusts it explicitly as its own CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class DovecotServer:
    """`dovecot -F -c <tmp>/dovecot.conf`; `stop()` ends it and removes the directory."""

    def __init__(self, *, tls: bool = True, idle_check_seconds: int = 1) -> None:
        reason = dovecot_missing_reason()
        if reason:
            raise RuntimeError(reason)
        # Short path: Dovecot's Unix sockets live under base_dir (~107-byte limit).
        self.root = Path(tempfile.mkdtemp(prefix="tldc", dir="/tmp"))
        self.root.chmod(0o755)  # the mail user (nobody, when we are root) must traverse it
        self.host = "127.0.0.1"
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.password = f"pw-{uuid.uuid4().hex}"
        self.cert_path: Path | None = None
        key_path: Path | None = None
        if tls:
            self.cert_path, key_path = _self_signed(self.root)
        self._write_config(key_path=key_path, idle_check_seconds=idle_check_seconds)
        self.log_path = self.root / "dovecot.log"
        self._proc = subprocess.Popen(
            [str(DOVECOT), "-F", "-c", str(self.conf)],
            stdout=(self.root / "stdout.log").open("wb"),
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self._wait_ready()

    def _write_config(self, *, key_path: Path | None, idle_check_seconds: int) -> None:
        me = pwd.getpwuid(os.geteuid())
        if os.geteuid() == 0:
            mail = pwd.getpwnam("nobody")
            internal, login = "dovecot", "dovenull"
            extra = "first_valid_uid = 1\n"
        else:  # rootless: every Dovecot process runs as us
            mail, internal, login = me, me.pw_name, me.pw_name
            extra = f"default_internal_group = {grp.getgrgid(me.pw_gid).gr_name}\n"
        mail_dir = self.root / "mail"
        mail_dir.mkdir()
        os.chown(mail_dir, mail.pw_uid, mail.pw_gid)
        for sub in ("run", "state"):
            (self.root / sub).mkdir()
        ssl = (
            f"ssl = yes\nssl_cert = <{self.cert_path}\nssl_key = <{key_path}\nssl_min_protocol = TLSv1.2\n"
            if key_path
            else "ssl = no\n"
        )
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(
            f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/dovecot.log
instance_name = tldc-{self.port}
listen = 127.0.0.1
protocols = imap
default_internal_user = {internal}
default_login_user = {login}
{extra}
disable_plaintext_auth = no
auth_mechanisms = plain login
{ssl}
mail_location = maildir:{mail_dir}/%u
mailbox_idle_check_interval = {idle_check_seconds} secs
passdb {{
  driver = static
  args = password={self.password}
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={mail_dir}/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Archive {{
    auto = create
  }}
  mailbox Trash {{
    auto = create
    special_use = \\Trash
  }}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No auth penalty: a wrong-password test must not slow the next test's logins from 127.0.0.1.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
auth_failure_delay = 0
"""
        )

    def new_user(self) -> MailUser:
        """A fresh, empty mailbox: the static passdb accepts any name with the server's password."""
        return MailUser(f"u{uuid.uuid4().hex[:12]}", self.password)

    def kick(self, user: MailUser) -> None:
        """Drop every connection of this user, as a server restart or a network cut would."""
        subprocess.run(
            [str(DOVEADM), "-c", str(self.conf), "kick", user.name], check=True, capture_output=True, timeout=10
        )

    def _wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"dovecot exited with {self._proc.returncode}:\n{self.logs()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    if s.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"dovecot did not answer on {self.port} within {timeout}s:\n{self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in ("stdout.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)
