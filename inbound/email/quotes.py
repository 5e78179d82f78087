"""Find the new part of a reply: drop quoted history, then the signature.

Line-based heuristics, in this order:

1. **History markers** end the reply: "-----Original Message-----" and its
   translations, an Outlook header block ("From: … / Sent: … / To: …", bold or not, in
   the languages below), and an attribution ("On … wrote:") that is followed by
   *unquoted* text (Gmail/Outlook top-posting without "> ").
2. **Trailing quotes**: "> " lines at the end, with their attribution.
3. **Bottom-posting**: one leading quote block followed only by new text is dropped
   (Thunderbird). Quotes *between* new paragraphs are an inline reply and are kept,
   since the answers make no sense without the questions.
4. **Signature** (``strip_signature``): the RFC 3676 §4.3 "-- " delimiter, mailing-list
   footers ("____"), rule lines, mobile sign-offs ("Sent from my iPhone"), a "-Name"
   line, and, when the sender is known, a last short paragraph that names them.

Forwarded messages ("---------- Forwarded message ---------") are *not* history:
a customer forwarding a thread to support is asking about what they forwarded.
If stripping would leave nothing, the text is returned whole.

Bounded work on hostile text (one 100 KB line of spaces once froze a worker): every
pattern is linear (no two adjacent quantifiers can trade characters; where they
could, the first is possessive, ``*+``), whole-line markers are only tried on lines of
at most ``_MAX_MARKER_LINE`` characters, and only the first ``_MAX_EXAMINED_CHARS`` of
a text are examined: past that, only a history marker inside them can cut, otherwise
the text is kept whole.
"""

from __future__ import annotations

import re

# Replies worth stripping are short; quoted history past this is cut at its first
# marker, and a text with no marker in its first 256 KB is shown as it came (the
# patterns are linear, so this bounds the whole heuristic, not one regex).
_MAX_EXAMINED_CHARS = 256 * 1024
# Whole-line markers ("-----Original Message-----", "-- ", "Sent from my iPhone")
# are short; longer lines are text.
_MAX_MARKER_LINE = 1000
# A From display name plus address; the rest of a giant header says nothing more.
_MAX_SENDER_CHARS = 1000

_ORIGINAL_MESSAGE = re.compile(
    r"^\s*+[-_=*~]*+\s*+(original message|original-message|ursprüngliche nachricht|"
    r"originalnachricht|message d'origine|mensaje original|messaggio originale|"
    r"mensagem original|oorspronkelijk bericht|originalmeddelande|oprindelig meddelelse|"
    r"opprinnelig melding|alkuperäinen viesti|wiadomość oryginalna|původní zpráva|"
    r"исходное сообщение|eredeti üzenet|orijinal mesaj|原始邮件|原始郵件|元のメッセージ)"
    r"\s*+[-_=*~]*+\s*+$",
    re.I,
)
_FORWARDED = re.compile(
    r"forwarded message|begin forwarded message|weitergeleitete nachricht|message transféré|"
    r"mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|пересылаемое сообщение",
    re.I,
)
# "\s*:\s*\*?(\s|$)" accepted exactly what ":\*?(\s|$)" does, with quadratic backtracking.
_LABEL = r"^\s*+\*?\s*+({})\s*+:\*?(?:\s|$)"
_FROM_LABEL = re.compile(
    _LABEL.format(r"from|von|de|da|van|od|от|fra|från|lähettäjä|feladó|kimden|发件人|寄件者|差出人|보낸 사람"),
    re.I,
)
_OTHER_LABEL = re.compile(
    _LABEL.format(
        r"sent|date|to|cc|subject|gesendet|datum|an|betreff|envoyé|à|objet|enviado|enviado el|"
        r"fecha|para|asunto|inviato|data|a|oggetto|verzonden|aan|onderwerp|wysłano|do|temat|"
        r"отправлено|дата|кому|тема|копия|sendt|til|emne|skickat|till|ämne|lähetetty|"
        r"vastaanottaja|aihe|odesláno|komu|předmět|elküldve|címzett|tárgy|gönderildi|kime|konu|"
        r"发送时间|时间|收件人|主题|寄件日期|收件者|主旨|送信日時|日時|宛先|件名|보낸 날짜|받는 사람|제목"
    ),
    re.I,
)
_WROTE = re.compile(
    r"(wrote|writes|schrieb|a écrit|escribió|escribio|ha scritto|scrisse|schreef|escreveu|"
    r"napisał|napisała|napsal|napsala|napísal|skrev|kirjoitti|írta|yazdı|пишет|написал|"
    r"написала|написал\(а\)|έγραψε|כתב|كتب|写道|寫道|が書きました|님이 작성)\s*:\s*$",
    re.I,
)
_ATTRIBUTION_LEAD = re.compile(r"^[\s>*-]*+(on|le|am|el|il|em|op|w dniu|dne|den|på|kl\.|στις|в|\d)", re.I)
_SEPARATOR = re.compile(r"^\s*+(?:[-_=*~]\s?+){5,}+\s*+$")
_QUOTE = re.compile(r"^\s*+>")


def _is_blank(line: str) -> bool:
    return not line.strip()


def _is_quote(line: str) -> bool:
    return bool(_QUOTE.match(line))


def _marker(pattern: re.Pattern[str], line: str) -> bool:
    """Whether ``line`` is a whole-line marker of ``pattern`` (markers are short)."""
    return len(line) <= _MAX_MARKER_LINE and pattern.match(line) is not None


def _separator(line: str) -> bool:
    return _marker(_SEPARATOR, line)


def _attributions(lines: list[str]) -> dict[int, int]:
    """Map the last line of each "On … wrote:" attribution to its first line.

    Attributions wrap over up to three lines (Gmail puts the address and "wrote:"
    on lines of their own when the name is long).
    """
    spans: dict[int, int] = {}
    for end, line in enumerate(lines):
        if len(line) > 300 or not _WROTE.search(line):
            continue
        start = end
        for candidate in range(end, max(-1, end - 3), -1):
            if _is_blank(lines[candidate]) or (candidate < end and _is_quote(lines[candidate]) != _is_quote(line)):
                break
            if _ATTRIBUTION_LEAD.match(lines[candidate]):
                start = candidate
        spans[end] = start
    return spans


def _next_content(lines: list[str], index: int) -> int | None:
    """Index of the first non-blank line at or after ``index``."""
    for i in range(index, len(lines)):
        if not _is_blank(lines[i]):
            return i
    return None


def _is_soft_attribution(line: str) -> bool:
    """A line that introduces a quote without saying "wrote" (Yandex, Mail.ru:
    '26.06.2014, 14:41, "Name" <a@b>:')."""
    stripped = line.strip()
    return stripped.endswith(":") and len(stripped) < 300 and bool(re.search(r"\d|@", stripped))


def _history_start(lines: list[str], spans: dict[int, int]) -> int | None:
    """First line of unquoted history (rule 1), or None."""
    i = 0
    while i < len(lines):
        line = lines[i]
        if _is_quote(line):
            i += 1
            continue
        if _marker(_ORIGINAL_MESSAGE, line):
            return i
        run = _header_run(lines, i)
        if run:
            if not _after_forward_marker(lines, i):
                return i
            i += run  # a forwarded message's headers: its body is the request
            continue
        if i in spans:
            following = _next_content(lines, i + 1)
            if following is not None and not _is_quote(lines[following]):
                return spans[i]
        i += 1
    return None


def _header_run(lines: list[str], start: int) -> int:
    """Length of the block of header lines ("From: …", "Sent: …") at ``start``;
    0 unless it has at least two lines, one of them a From line."""
    seen_from = False
    count = 0
    for line in lines[start : start + 8]:
        if _FROM_LABEL.match(line):
            seen_from = True
        elif not _OTHER_LABEL.match(line):
            break
        count += 1
    return count if seen_from and count >= 2 else 0


def _after_forward_marker(lines: list[str], index: int) -> bool:
    for i in range(index - 1, max(-1, index - 4), -1):
        if _is_blank(lines[i]):
            continue
        return bool(_FORWARDED.search(lines[i]))
    return False


def _trim_trailing_quotes(lines: list[str], spans: dict[int, int]) -> list[str]:
    """Rule 2: drop quote lines (and what introduces them) at the end."""
    end = len(lines)
    saw_quote = False
    while end > 0:
        line = lines[end - 1]
        if _is_blank(line) or _separator(line) or _is_quote(line):
            saw_quote = saw_quote or _is_quote(line)
            end -= 1
        elif saw_quote and end - 1 in spans:
            end = spans[end - 1]
        elif saw_quote and _is_soft_attribution(line):
            end -= 1
        else:
            break
    return lines[:end]


def _drop_leading_quote(lines: list[str], spans: dict[int, int]) -> list[str]:
    """Rule 3: a bottom-posted reply under a single leading quote block."""
    first = _next_content(lines, 0)
    if first is None:
        return lines
    reverse = {start: end for end, start in spans.items()}
    cursor = first
    if first in reverse:
        cursor = reverse[first] + 1
    elif not _is_quote(lines[first]) and _is_soft_attribution(lines[first]):
        cursor = first + 1
    quote_start = _next_content(lines, cursor)
    if quote_start is None or not _is_quote(lines[quote_start]):
        return lines
    rest = quote_start
    while rest < len(lines) and (_is_quote(lines[rest]) or _is_blank(lines[rest])):
        rest += 1
    if rest == len(lines) or any(_is_quote(line) for line in lines[rest:]):
        return lines  # nothing after it, or an inline reply: keep the context
    return lines[rest:]


def _trim_blank_edges(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and _is_blank(lines[start]):
        start += 1
    while end > start and (_is_blank(lines[end - 1]) or _separator(lines[end - 1])):
        end -= 1
    return lines[start:end]


def _split_lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _examined_lines(text: str) -> tuple[list[str], bool]:
    """(lines to examine, whether they are the whole text): past
    ``_MAX_EXAMINED_CHARS`` only the complete lines before it."""
    if len(text) <= _MAX_EXAMINED_CHARS:
        return _split_lines(text), True
    return _split_lines(text[:_MAX_EXAMINED_CHARS])[:-1], False


def strip_quotes(text: str) -> str:
    """``text`` without quoted history (rules 1–3); the signature is kept."""
    lines, whole = _examined_lines(text)
    spans = _attributions(lines)
    history = _history_start(lines, spans)
    if history is not None:
        lines = lines[:history]
    elif not whole:
        return text.strip()  # its end was never examined: rules 2 and 3 cannot apply
    lines = _trim_trailing_quotes(lines, spans)
    lines = _drop_leading_quote(lines, spans)
    result = "\n".join(_trim_blank_edges(lines))
    return result if result.strip() else text.strip()


# --- signatures -------------------------------------------------------------------

# Same language as "^(--|-- |—|__+|_{2,}\s*)\s*$", whose "_{2,}\s*\s*" was quadratic.
_DELIMITER = re.compile(r"^(?:--|—|_{2,}+)\s*+$")
_RULE = re.compile(r"^\s*+-{4,}+\s*+$")
_MOBILE = re.compile(
    r"^\s*+(sent from my\s+[\w'®™\-]+(\s+[\w'®™\-]+){0,4}\.?|sent from (yahoo )?mail for \w+.*|"
    r"sent from (outlook|mail|yahoo mail|samsung mobile|my mobile)\b[^,]{0,40}|"
    r"sent with [\w ]{1,30}(\(.*\))?|get outlook for \w+|sent via [\w ]{1,30}|"
    r"envoyé de mon [\w ]{1,30}|enviado desde mi [\w ]{1,30}|von meinem [\w ]{1,30} gesendet|"
    r"inviato da [\w ]{1,30}|verzonden met [\w ]{1,30}|отправлено с [\w ]{1,30})\s*+$",
    re.I,
)
_DASH_NAME = re.compile(r"^\s*+-[^\W\d_][\w.'-]*+(?:\s++[\w.'-]++){0,3}+\s*+$")
_SIGN_OFF = re.compile(
    r"^\s*+(thanks|thank you|many thanks|thx|cheers|regards|best|best regards|kind regards|"
    r"warm regards|sincerely|yours|br|cordialement|grüße|gruß|mit freundlichen grüßen|saludos|"
    r"un saluto|saluti|groeten|pozdrawiam|с уважением)\b[^.!?]{0,30}[,.!]?\s*+$",
    re.I,
)


def _sender_tokens(sender: str | None) -> tuple[set[str], set[str]]:
    """(name tokens, addresses) of the sender, lower-cased; an address's local part
    ("gina.x@…") contributes its pieces as names too."""
    if not sender:
        return set(), set()
    words = sender[:_MAX_SENDER_CHARS].replace("<", " ").replace(">", " ").split()
    addresses = {w.strip(",;()\"'").lower() for w in words if "@" in w}
    name_text = " ".join(w for w in words if "@" not in w)
    names = {t.lower() for t in re.findall(r"[^\W\d_][\w'-]+", name_text)}
    for addr in addresses:
        names.update(p for p in re.split(r"[._+-]", addr.split("@")[0]) if len(p) > 2)
    return names, addresses


def _names_sender(line: str, names: set[str]) -> bool:
    """A short, name-like line with one of the sender's names in it ("Gina X", "-- Tim")."""
    words = line.split()
    if not words or len(words) > 5:
        return False
    lowered = line.lower()
    return any(re.search(rf"(?<![^\W_]){re.escape(n)}(?![^\W_])", lowered) for n in names) and all(
        not w[0].islower() for w in words
    )


def _signature_start(lines: list[str], sender: str | None) -> int | None:
    content = [i for i, line in enumerate(lines) if not _is_blank(line)]
    if len(content) < 2:
        return None
    first = content[0]
    tail = [i for i in content if i > first][-25:]
    names, addresses = _sender_tokens(sender)
    for i in tail:
        after = [j for j in content if j > i]
        line = lines[i]
        if (_marker(_DELIMITER, line) and len(after) <= 30) or (_marker(_RULE, line) and len(after) <= 20):
            return i
        if (_marker(_MOBILE, line) or _marker(_DASH_NAME, line)) and len(after) <= 2:
            return i
    return _sender_paragraph(lines, content, names, addresses)


def _sender_paragraph(lines: list[str], content: list[int], names: set[str], addresses: set[str]) -> int | None:
    """The last paragraph, when it is a short block naming the sender."""
    if not names and not addresses:
        return None
    start = content[-1]
    while start - 1 >= 0 and not _is_blank(lines[start - 1]):
        start -= 1
    block = lines[start : content[-1] + 1]
    if start <= content[0] or len(block) > 8 or any(len(line) > 80 for line in block):
        return None
    text = "\n".join(block).lower()
    if any(addr in text for addr in addresses):
        return start
    opener = 1 if _SIGN_OFF.match(block[0]) and len(block) > 1 else 0
    return start if _names_sender(block[opener], names) else None


def strip_signature(text: str, *, sender: str | None = None) -> str:
    """``text`` without a trailing signature. ``sender`` is the From display name
    and/or address; with it, a closing "Thanks,\\nName" block is recognised too."""
    lines, whole = _examined_lines(text)
    if not whole:
        return text.strip()  # a signature is at the end, which is past what is examined
    start = _signature_start(lines, sender)
    if start is None:
        return text.strip()
    result = "\n".join(_trim_blank_edges(lines[:start]))
    return result if result.strip() else text.strip()


def strip_reply(text: str, *, sender: str | None = None) -> str:
    """The visible new reply: quoted history and signature removed (module docstring)."""
    current = text.strip()
    for _ in range(4):  # a footer can hide trailing quotes and vice versa
        stripped = strip_signature(strip_quotes(current), sender=sender)
        if stripped == current:
            break
        current = stripped
    return current
