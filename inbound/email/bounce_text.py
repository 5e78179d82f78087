"""Failed recipients in the human-readable text of a non-DSN bounce (baseline)."""

from __future__ import annotations

import re

_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ORIGINAL = re.compile(
    r"^\s*[-=]*\s*(below this line is a copy of the message|original message follows|"
    r"this is a copy of the message|original message as received|unsent message below|"
    r"original message|returned message|message follows|text of the original message)",
    re.I | re.M,
)


def scan_notice(notice: str, *, ignore: frozenset[str]) -> tuple[tuple[str, ...], str] | None:
    cut = _ORIGINAL.search(notice)
    text = notice[: cut.start()] if cut else notice
    found: list[str] = []
    for match in _ADDRESS.finditer(text.replace("SMTP=", " ")):
        addr = match.group(0).strip(".")
        local, _, domain = addr.rpartition("@")
        addr = f"{local}@{domain.lower()}"
        if addr.lower() in ignore or local.lower() in ("postmaster", "mailer-daemon"):
            continue
        found.append(addr)
    if not found:
        return None
    return tuple(dict.fromkeys(found)), "generic"


def looks_temporary(subject: str, notice: str) -> bool:
    return bool(re.search(r"warning|delayed|not yet been delivered|will (continue to )?(re)?try", subject + "\n" + notice[:2000], re.I))
