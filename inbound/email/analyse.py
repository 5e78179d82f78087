"""Everything the ingest pipeline learns from a mail's bytes, in one call that runs in a
budgeted child process (see ``core/budget.py``): parse, bounce report, sender authenticity.

Nothing here touches the database; arguments and result are plain picklable values.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbound.email.bounces import BounceReport, detect_bounce
from inbound.email.model import ParsedEmail
from inbound.email.parse import parse_email


@dataclass(frozen=True)
class MailAnalysis:
    parsed: ParsedEmail
    # What the bounce detector found. Only a candidate: the pipeline acts on it when the mail
    # carries machine-readable evidence (see inbound/ingest/steps.py `automatic`).
    bounce: BounceReport | None


def analyse_email(raw: bytes) -> MailAnalysis:
    """Parse ``raw`` and run the heuristics over it (raises UnparseableEmail for non-mail)."""
    parsed = parse_email(raw)
    return MailAnalysis(parsed=parsed, bounce=detect_bounce(parsed, raw))
