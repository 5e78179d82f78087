"""Value objects: normalisation and derived attachment properties."""

from __future__ import annotations

import hashlib

from inbound.email.model import EmailAddress, ParsedAttachment


def test_email_address_normalisation() -> None:
    """Brackets and white space go, the domain folds, the local part keeps its case."""
    assert EmailAddress.normalised("  Ann   Smith ", " <Ann.Smith@Example.ORG> ") == EmailAddress(
        "Ann Smith", "Ann.Smith@example.org"
    )


def test_attachment_size_and_sha256() -> None:
    """size and sha256 describe the decoded content."""
    attachment = ParsedAttachment("a.txt", "text/plain", b"hello", None, False)
    assert (attachment.size, attachment.sha256) == (5, hashlib.sha256(b"hello").hexdigest())
