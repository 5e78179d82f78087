"""DKIM (RFC 6376) verification with dkimpy, keys looked up through our ``DnsBudget``.

Each signature is verified on its own; the message passes if any one does (RFC 6376 §6.1:
a verifier reports every signature, and one valid signature is enough for DMARC).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dkim

from inbound.email.auth_dns import DnsBudget, DnsTempError
from inbound.email.auth_model import DkimOutcome, DkimResult, clip, header_block

# Bounds for hostile mail (RFC 6376 §8.4 warns of this DoS). dkimpy parses the message once
# (about 0.1 s/MB) and canonicalises the whole body again for every signature (relaxed: 0.1
# to 0.3 s/MB, whitespace-heavy text the slow end). So the signatures verified are capped,
# and capped further for big messages so that at most MAX_HASHED_BYTES are canonicalised:
# a 25 MB message gets its first signature checked, a 6 MB one all five.
MAX_SIGNATURES = 5
MAX_HASHED_BYTES = 32 * 1024 * 1024
MAX_DKIM_BYTES = 32 * 1024 * 1024
_SIGNATURE_FIELD = re.compile(rb"^dkim-signature[ \t]*:", re.IGNORECASE | re.MULTILINE)

# dkimpy signals a malformed message, signature or key with these; none is our bug.
_MALFORMED = (dkim.DKIMException, ValueError, LookupError, UnicodeError)


_UNSIGNED = DkimOutcome(DkimResult.NONE, (), "DKIM none: the message carries no DKIM-Signature.")


@dataclass(frozen=True)
class SignatureResult:
    result: DkimResult
    domain: str | None
    reason: str


def check_dkim(raw: bytes, *, dns: DnsBudget) -> DkimOutcome:
    """Verify up to ``MAX_SIGNATURES`` DKIM-Signature header fields of ``raw``."""
    if len(raw) > MAX_DKIM_BYTES:
        return DkimOutcome(DkimResult.PERMERROR, (), f"DKIM not verified: the message exceeds {MAX_DKIM_BYTES} bytes.")
    if not _SIGNATURE_FIELD.search(header_block(raw)):
        return _UNSIGNED  # spares dkimpy parsing a big unsigned message line by line
    try:
        verifier = dkim.DKIM(raw)
    except _MALFORMED as exc:
        return DkimOutcome(DkimResult.PERMERROR, (), clip(f"DKIM permerror: the header section is unreadable ({exc})."))
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    if count == 0:
        return _UNSIGNED
    limit = max(1, min(MAX_SIGNATURES, MAX_HASHED_BYTES // len(raw)))
    results = [verify_signature(verifier, idx, dns=dns) for idx in range(min(count, limit))]
    skipped = f" ({count - limit} further signatures not checked)" if count > limit else ""
    return summarise(results, skipped)


def verify_signature(verifier: dkim.DKIM, idx: int, *, dns: DnsBudget) -> SignatureResult:
    """One signature's result; a temporary DNS failure is remembered because dkimpy reports it as False."""
    lookup: list[str] = []  # what the key lookup met: "temp", "nokey"

    def dnsfunc(name: bytes, timeout: float = 5) -> bytes | None:
        qname = name.decode("ascii", "replace")
        try:
            records = dns.txt(qname)
        except DnsTempError as exc:
            lookup.append("temp")
            raise dkim.DnsTimeoutError(str(exc)) from exc
        if not records:
            lookup.append("nokey")
            return None
        return records[0].encode("utf-8")  # RFC 6376 §3.6.2.2: with several records, any one may be used

    verifier.domain = None  # else a signature that fails early would report the previous one's d=
    try:
        ok = verifier.verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.ValidationError as exc:  # body hash mismatch, expired, missing tag
        # dkimpy appends both hashes in parentheses; the first words say what went wrong.
        return SignatureResult(DkimResult.FAIL, _domain(verifier), clip(str(exc).split(" (")[0], 120))
    except _MALFORMED as exc:
        return SignatureResult(DkimResult.PERMERROR, _domain(verifier), clip(str(exc) or type(exc).__name__, 120))
    domain = _domain(verifier)
    if ok:
        return SignatureResult(DkimResult.PASS, domain, "valid")
    if "temp" in lookup:
        return SignatureResult(DkimResult.TEMPERROR, domain, "key lookup failed temporarily")
    if "nokey" in lookup:
        # RFC 6376 §6.1.2: no key record is a PERMFAIL.
        return SignatureResult(DkimResult.PERMERROR, domain, "no key published for the selector")
    return SignatureResult(DkimResult.FAIL, domain, "signature does not verify")


def _domain(verifier: dkim.DKIM) -> str | None:
    """d= of the signature last parsed (dkimpy sets it once the tags validate), lower-cased."""
    raw = getattr(verifier, "domain", None)
    if not isinstance(raw, bytes):
        return None
    return raw.decode("ascii", "replace").strip().rstrip(".").lower() or None


def summarise(results: list[SignatureResult], skipped: str = "") -> DkimOutcome:
    passed = tuple(dict.fromkeys(r.domain for r in results if r.result is DkimResult.PASS and r.domain))
    if passed:
        return DkimOutcome(DkimResult.PASS, passed, clip(f"DKIM pass: signed by {', '.join(passed)}{skipped}."))
    # Worst first: a temporary failure may yet pass on retry; a bad signature is a fail;
    # only if every signature is unusable is the result a permerror.
    for result in (DkimResult.TEMPERROR, DkimResult.FAIL, DkimResult.PERMERROR):
        if any(r.result is result for r in results):
            break
    details = "; ".join(f"{r.domain or 'unknown domain'}: {r.reason}" for r in results)
    return DkimOutcome(result, (), clip(f"DKIM {result}: {details}{skipped}."))
