"""Where the public email corpora live, and how tests get at them.

The corpora are third-party data kept outside the repository (``shared/corpora`` next
to it). ``THREADLINE_CORPORA`` points elsewhere; when the folder is missing, tests
that need it are skipped with the reason, never silently passed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
_NOT_MAIL_NAMES = re.compile(
    r"^(expected\.json|LICENSE.*|MIT-LICENSE|NOTICE.*|README.*|SOURCE.*|\.gitattributes|__init__\.py)$"
)
_FIRST_LINE_OF_MAIL = re.compile(rb"^(From |[!-9;-~]+[ \t]*:)")


def corpora_root() -> Path:
    """``$THREADLINE_CORPORA``, else ``<repo>/../shared/corpora``."""
    configured = os.environ.get("THREADLINE_CORPORA")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "corpora"


def corpus(name: str) -> Path | None:
    """The folder of one corpus, or None when it is not there."""
    path = corpora_root() / name
    return path if path.is_dir() else None


def require(name: str) -> Path:
    """The folder of one corpus; skips the calling test when it is absent."""
    path = corpus(name)
    if path is None:
        pytest.skip(f"corpus {name!r} not found under {corpora_root()} (set THREADLINE_CORPORA)")
    return path


def expected(name: str) -> dict[str, Any]:
    """The corpus's expected.json ({} when the corpus is absent)."""
    path = corpus(name)
    if path is None:
        return {}
    data: dict[str, Any] = json.loads((path / "expected.json").read_text(encoding="utf-8"))
    return data


def params(items: list[tuple[str, Any]], *, corpus_name: str, xfail: dict[str, str] | None = None) -> list[Any]:
    """pytest params (id, value) — or one skipped param saying the corpus is missing,
    so an absent corpus shows up as a skip rather than as zero tests. ``xfail`` maps
    ids to the reason a case is known not to meet its expectation (strict)."""
    if corpus(corpus_name) is None:
        reason = f"corpus {corpus_name!r} not found under {corpora_root()} (set THREADLINE_CORPORA)"
        return [pytest.param(None, id="corpus-missing", marks=pytest.mark.skip(reason=reason))]
    known = xfail or {}
    return [
        pytest.param(
            value, id=ident, marks=[pytest.mark.xfail(reason=known[ident], strict=True)] if ident in known else []
        )
        for ident, value in items
    ]


def data_files() -> list[Path]:
    """Every data file in every corpus, recursively (licences and expected.json aside)."""
    root = corpora_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not _NOT_MAIL_NAMES.match(p.name))


def looks_like_mail(path: Path) -> bool:
    """Whether a file starts like an RFC 5322 message (a header field or an mbox line)."""
    head = path.read_bytes()[:4096].lstrip(b"\xef\xbb\xbf\r\n")
    return bool(_FIRST_LINE_OF_MAIL.match(head))


def relative(path: Path) -> str:
    return str(path.relative_to(corpora_root()))


def normalise_ws(text: str) -> str:
    """Whitespace normalisation used to compare reply texts (corpora README)."""
    return " ".join(text.split())
