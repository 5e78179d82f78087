"""Results a trusted relay already wrote: Authentication-Results (RFC 8601), read with ``authres``.

Anyone can write an Authentication-Results header, so only those whose authserv-id we
were told to trust count, and of those only the topmost (RFC 8601 §5: the receiving relay
prepends its header; ones below it arrived with the message). That is safe only if the
trusted relay strips or outranks forged headers bearing its own id (RFC 8601 §5, §7.2),
which the big providers do; an operator who lists an id takes that on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import authres

from inbound.email.auth_model import DkimResult, DmarcResult, SpfResult, clip, header_block

MAX_HEADER_BYTES = 256 * 1024  # of the header section searched
MAX_RESULTS_HEADERS = 50  # Authentication-Results headers looked at, topmost first
MAX_RESULTS_CHARS = 8 * 1024  # authres parses by repeated regex substitution: quadratic, so bound it

_FOLD = re.compile(r"\r?\n(?=[ \t])")  # RFC 5322 §2.2.3 unfolding
# authserv-id is the first token, after optional comments (RFC 8601 §2.2). A cheap match picks
# the header to trust; authres then parses it and must agree.
_AUTHSERV_ID = re.compile(r"\s*(?:\([^()]{0,256}\)\s*)*([^\s;()]{1,255})")

# RFC 8601 §2.7 words we do not emit, mapped onto ours. RFC 5451's "hardfail" is SPF fail;
# DKIM "neutral" means the signature could not be processed, "policy" that it was not accepted.
_SPF_ALIASES = {"hardfail": SpfResult.FAIL}
_DKIM_ALIASES = {"neutral": DkimResult.PERMERROR, "policy": DkimResult.FAIL}
_DMARC_ALIASES = {"bestguesspass": DmarcResult.NONE}  # Gmail: no record, but would have passed


_Word = TypeVar("_Word", SpfResult, DkimResult, DmarcResult)


@dataclass(frozen=True)
class RelayVerdict:
    authserv_id: str
    spf: SpfResult
    dkim: DkimResult
    dmarc: DmarcResult
    dkim_domains: tuple[str, ...]
    header_from: str | None
    reason: str


def results_headers(raw: bytes) -> Iterator[str]:
    """Unfolded Authentication-Results values, topmost first, within the bounds above."""
    text = _FOLD.sub(" ", header_block(raw, MAX_HEADER_BYTES).decode("utf-8", "replace"))
    found = 0
    for line in text.split("\n"):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "authentication-results":
            yield value.strip()
            found += 1
            if found >= MAX_RESULTS_HEADERS:
                return


def read_trusted_results(raw: bytes, *, trusted_ids: frozenset[str]) -> RelayVerdict | None:
    """The verdict of the topmost Authentication-Results from a trusted authserv-id, if any."""
    trusted = {i.strip().lower() for i in trusted_ids if i.strip()}
    if not trusted:
        return None
    for value in results_headers(raw):
        match = _AUTHSERV_ID.match(value)
        if match and match.group(1).lower() in trusted:
            return _verdict(match.group(1).lower(), value)
    return None


def _verdict(authserv_id: str, value: str) -> RelayVerdict:
    header = _parse(value)
    if header is None or header.authserv_id != authserv_id:
        # The relay's own header is unreadable: report that rather than trust one lower down.
        return RelayVerdict(
            authserv_id,
            SpfResult.PERMERROR,
            DkimResult.PERMERROR,
            DmarcResult.PERMERROR,
            (),
            None,
            f"The Authentication-Results header of {authserv_id} could not be parsed.",
        )
    by_method: dict[str, list[Any]] = {}
    for result in header.results:
        by_method.setdefault(result.method, []).append(result)
    spf = _word(by_method.get("spf"), SpfResult, _SPF_ALIASES, SpfResult.NONE, SpfResult.PERMERROR)
    dkims = by_method.get("dkim", [])
    passed = tuple(dict.fromkeys(d for r in dkims if r.result == "pass" and (d := _signing_domain(r))))
    dkim = (
        DkimResult.PASS
        if any(r.result == "pass" for r in dkims)
        else _word(dkims, DkimResult, _DKIM_ALIASES, DkimResult.NONE, DkimResult.PERMERROR)
    )
    dmarcs = by_method.get("dmarc")
    dmarc = _word(dmarcs, DmarcResult, _DMARC_ALIASES, DmarcResult.NONE, DmarcResult.PERMERROR)
    header_from = _property(dmarcs[0], "header", "from") if dmarcs else None
    signed = f" ({', '.join(passed)})" if passed else ""
    reason = f"As reported by {authserv_id}: SPF {spf}, DKIM {dkim}{signed}, DMARC {dmarc}."
    return RelayVerdict(authserv_id, spf, dkim, dmarc, passed, header_from, clip(reason))


def _parse(value: str) -> Any | None:
    if len(value) > MAX_RESULTS_CHARS:
        return None
    try:
        return authres.AuthenticationResultsHeader.parse_value(value)
    except (authres.AuthResError, ValueError, RecursionError):  # RecursionError: deeply nested comments
        return None


def _word(
    results: list[Any] | None, enum: type[_Word], aliases: Mapping[str, _Word], missing: _Word, unknown: _Word
) -> _Word:
    """The first result of a method, in our vocabulary (``missing`` if the relay did not report it)."""
    if not results:
        return missing
    word = str(results[0].result).lower()
    if word in aliases:
        return aliases[word]
    return enum(word) if word in {e.value for e in enum} else unknown


def _property(result: Any, ptype: str, name: str) -> str | None:
    for prop in result.properties:
        if prop.type == ptype and prop.name == name and prop.value:
            return clip(str(prop.value), 255).lower()
    return None


def _signing_domain(result: Any) -> str | None:
    """header.d, or the domain of header.i (RFC 8601 §2.7.1 names both)."""
    domain = _property(result, "header", "d")
    if domain is None and (identity := _property(result, "header", "i")):
        domain = identity.rpartition("@")[2] or None
    return domain.rstrip(".") if domain else None
