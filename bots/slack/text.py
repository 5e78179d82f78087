"""Outside text made safe for Slack: escaped for mrkdwn and cut to Block Kit's limits.

Slack reads `&`, `<` and `>` as control characters in every text object and in a message's
top-level `text` (https://api.slack.com/reference/surfaces/formatting#escaping): a subject or a
remote mail server's error saying `<!channel>`, `<@U123>` or `<http://evil|click>` would ping the
channel or show a fake link. Everything that did not come from us goes through `fit` (or `fit_list`,
`chunks`), which escapes it and cuts it so the Slack call cannot fail on a length limit.

Lengths are counted on the escaped text in UTF-16 code units, the stricter of the two ways a limit
may be counted (slack_sdk counts code points, Slack's servers JavaScript string units), and a cut
never splits an entity (`&am…`) or a surrogate pair.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from bots.surface.views import ELLIPSIS

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks, .../composition-objects;
# slack_sdk.models.blocks validates some of them when a block is built or serialised).
SECTION_TEXT = 3000
SECTION_FIELD = 2000
CONTEXT_TEXT = 2000  # a text object may hold 3,000; context lines stay well under it
BUTTON_TEXT = 75
MODAL_TITLE = 24
INPUT_VALUE = 3000  # plain_text_input initial_value / max_length
MESSAGE_TEXT = 4000  # top-level `text`: Slack advises at most 4,000 and truncates past 40,000
MESSAGE_BLOCKS = 50
MODAL_BLOCKS = 100
URL = 1000  # a longer link is shown as text: a list of sources must still fit a context line

_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_TABLE = str.maketrans(_ENTITIES)
_UNSAFE_IN_LINK = re.compile(r"[\s<>|]")


def escape(text: str) -> str:
    """Slack's three control characters as entities (nothing else is entity-encoded)."""
    return text.translate(_TABLE)


def units(text: str) -> int:
    """Length as Slack's servers count it (UTF-16 code units)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _piece(ch: str) -> tuple[str, int]:
    escaped = _ENTITIES.get(ch, ch)
    return escaped, (2 if ord(ch) > 0xFFFF else len(escaped))


def _take(text: str, start: int, budget: int) -> tuple[str, int]:
    """Escaped characters of `text` from `start` while they fit in `budget` units; and where it stopped."""
    out: list[str] = []
    used, i = 0, start
    end = min(len(text), start + max(budget, 0))  # every character costs at least one unit
    while i < end:
        piece, cost = _piece(text[i])
        if used + cost > budget:
            break
        out.append(piece)
        used += cost
        i += 1
    return "".join(out), i


@dataclass(frozen=True)
class Fitted:
    text: str  # escaped, within the limit
    cut: bool  # the end of the outside text is not shown


def fit(text: str, limit: int, *, placeholder: str = "") -> Fitted:
    """`text` escaped; if that is longer than `limit`, its head ending with `…` (the cut is visible).
    Blank text becomes `placeholder` (Slack refuses an empty text object)."""
    if placeholder and not text.strip():
        text = placeholder
    shown, stop = _take(text, 0, limit)
    if stop >= len(text):
        return Fitted(shown, False)
    head, _ = _take(text, 0, limit - len(ELLIPSIS))
    return Fitted(head + ELLIPSIS, True)


def fit_list(items: Sequence[str], limit: int, *, sep: str = ", ", item_limit: int | None = None,
             escaped: bool = False) -> Fitted:
    """As many escaped items as fit in `limit`, each cut to `item_limit`, then `… and N more` (a
    10,000-name list costs no more than ten). `escaped` items are ready-made mrkdwn: one that does not
    fit is left out whole, never cut."""
    reserve = units(f"{sep}{ELLIPSIS} and {len(items)} more")
    shown: list[str] = []
    used, cut = 0, False
    for n, item in enumerate(items):
        room = limit - used - (len(sep) if shown else 0) - (reserve if n < len(items) - 1 else 0)
        part = Fitted(item, False) if escaped else fit(item, min(room, item_limit or limit))
        if units(part.text) > room or (part.cut and room < (item_limit or limit)):  # out of room
            if shown or escaped or room <= len(ELLIPSIS):
                break
            part = fit(item, room)  # the first item alone is too long: show its head
        used += units(part.text) + (len(sep) if shown else 0)
        shown.append(part.text)
        cut = cut or part.cut
    left = len(items) - len(shown)
    more = f"{ELLIPSIS} and {left} more" if left else ""
    text = sep.join([*shown, more] if shown and more else shown or [more])
    return Fitted(text, cut or left > 0)


def head(text: str, limit: int) -> str:
    """The unescaped head of `text` within `limit` units (for input values, which Slack does not parse)."""
    if len(text) <= limit // 2:
        return text
    used = 0
    for i, ch in enumerate(text):
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > limit:
            return text[:i]
    return text


def chunks(text: str, size: int, *, most: int) -> tuple[list[str], bool]:
    """`text` escaped, in at most `most` pieces of at most `size` units; and whether some was left over."""
    out: list[str] = []
    start = 0
    while start < len(text) and len(out) < most:
        piece, start = _take(text, start, size)
        out.append(piece)
    return out, start < len(text)


def link(url: str, label: str) -> str | None:
    """`<url|label>` for an http(s) address, with everything that could end the link encoded; else None."""
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:  # e.g. an unbalanced "[" in the host
        return None
    if scheme not in ("http", "https"):
        return None
    safe = _UNSAFE_IN_LINK.sub(lambda m: quote(m.group(), safe=""), url).replace("&", "&amp;")
    if units(safe) > URL:
        return None
    return f"<{safe}|{escape(label)}>"
