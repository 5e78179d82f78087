"""Make sender HTML safe to show to agents, and render HTML as plain text.

Policy (``sanitize_html``), an allow-list applied by nh3 (ammonia):
* No scripts, ``<style>`` blocks, forms, frames, embeds, SVG or MathML; their content
  goes too. No ``style``/``class``/``id`` or event-handler attributes.
* Links keep only http, https, mailto and tel; ``javascript:``/``data:``/relative URLs
  are removed, and links get ``rel="noopener noreferrer nofollow"``.
* Images: only ``cid:`` sources survive (the UI serves them from our attachment
  store). A remote ``<img src="http...">`` loses its ``src``: loading it would tell the
  sender when the ticket was read and from which IP (tracking pixels), and remote
  images in mail are overwhelmingly that. Its ``alt`` text stays. Remote *links* stay.

Both functions read at most ``MAX_HTML_CHARS`` of their input and do linear work on
it (the guards below name the shapes that were not).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from html import escape, unescape
from html.parser import HTMLParser

import nh3

_TAGS = frozenset(
    "a abbr b bdi bdo blockquote br caption center cite code col colgroup dd del dfn div dl dt "
    "em font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike "
    "strong sub sup table tbody td tfoot th thead tr tt u ul var wbr".split()
)
_DROP_WITH_CONTENT = frozenset({"script", "style", "title", "head", "template", "noscript", "iframe", "object"})
_CELL = {"colspan", "rowspan", "valign", "width", "height", "bgcolor"}
_ATTRIBUTES = {
    "*": {"dir", "lang", "title", "align"},
    "a": {"href", "name"},
    "img": {"src", "alt", "width", "height"},
    "td": _CELL,
    "th": _CELL,
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
}
_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel", "cid"})


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    if tag == "img" and attribute == "src":
        return value if value.strip().lower().startswith("cid:") else None
    if tag == "a" and attribute == "href" and value.strip().lower().startswith("cid:"):
        return None  # cid: is for embedded images, not navigation
    return value


@functools.cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=set(_TAGS),
        clean_content_tags=set(_DROP_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in _ATTRIBUTES.items()},
        attribute_filter=_filter_attribute,
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        url_schemes=set(_URL_SCHEMES),
        url_relative="deny",
    )


# html5ever's tree builder (inside nh3) does scope checks that walk the stack of open
# elements: cost grows with tags x depth (80,000 nested <div> took 15 s). Real mail
# nests a few dozen levels; deeper documents are shown as escaped text instead.
MAX_HTML_DEPTH = 400
# html.parser and html5ever cost up to ~5 s per MB of hostile tag soup; Gmail clips
# mail at 102 KB, so what lies past 256 KB is not read by anyone anyway.
MAX_HTML_CHARS = 256 * 1024
# html5ever copies a text node for every character reference appended to it: cost grows
# with the square of the references in one run of text (1,000,000 "&" took 15 s). Real
# text has a handful per paragraph; such a document is shown as escaped text.
MAX_REFS_PER_RUN = 10_000
_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9:-]{0,40})[^<>]*?(/?)>")
_VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())


def html_depth(html: str) -> int:
    """Deepest element nesting, estimated by one linear scan over the tags."""
    depth = deepest = 0
    for match in _TAG.finditer(html):
        if match.group(3) or match.group(2).lower() in _VOID:
            continue
        if match.group(1):
            depth = max(0, depth - 1)
        else:
            depth += 1
            deepest = max(deepest, depth)
    return deepest


def clip_html(html: str) -> str:
    """``html`` cut to at most ``MAX_HTML_CHARS``, before the last tag that would be cut."""
    if len(html) <= MAX_HTML_CHARS:
        return html
    lt = html.rfind("<", 0, MAX_HTML_CHARS)
    return html[: lt if lt > 0 else MAX_HTML_CHARS]


def _crowded_refs(html: str) -> bool:
    return any(run.count("&") > MAX_REFS_PER_RUN for run in html.split("<"))


def sanitize_html(html: str) -> str:
    """Sanitised HTML fragment for display (see the module docstring for the policy).

    Beyond ``MAX_HTML_DEPTH`` nested elements, or ``MAX_REFS_PER_RUN`` character
    references in one run of text, the result is the escaped text rendering, safe
    by construction.
    """
    html = clip_html(html)
    if html_depth(html) > MAX_HTML_DEPTH or _crowded_refs(html):
        return "<div>" + escape(html_to_text(html)).replace("\n", "<br>") + "</div>"
    return _cleaner().clean(html).strip()


# --- HTML -> text -----------------------------------------------------------------

_BLOCK = frozenset(
    "address article aside center dd div dl dt fieldset figcaption figure footer form header "
    "li main nav ol section table tbody thead tfoot tr ul".split()
)
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "pre"})
_INVISIBLE = frozenset({"script", "style", "head", "title", "template", "noscript", "xml"})
_SPACES = re.compile(r"[ \t\r\n\f\u00a0]+")
# A "<" with no ">" before the next "<": html.parser rescans such input from every
# "<" (quadratic: 20,000 of them took seconds), and it is text anyway.
_UNCLOSED_LT = re.compile(r"<(?![^<>]*>)")
# The keyword of "<![if …]>" (Office, closed by "]>") or "<![CDATA[" (closed by "]]>").
_MARKED_SECTION = re.compile(r"[a-zA-Z][-_.a-zA-Z0-9]{0,40}")
_OFFICE_SECTIONS = frozenset({"if", "else", "endif"})


class _TextRenderer(HTMLParser):
    """Readable plain text: blocks become lines, <blockquote> becomes "> " lines so
    quote stripping works the same on HTML-only mail, links show their target."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current: list[str] = []
        self.quote_depth = 0
        self.invisible = 0
        self.pre = 0
        self.href_stack: list[str | None] = []
        self.link_text: list[int] = []
        self.paragraphs: list[bool] = []  # open <p>: True when it is a Word line
        self.unterminated: dict[str, tuple[str, int]] = {}  # kind -> (rawdata, from)

    # html.parser searches the rest of the document for the end of a comment or marked
    # section ("-->", "]]>", "]>") from every opening, again on close(): 20,000
    # unterminated "<!--" took 19 s. A search that failed from one position fails from
    # every later one (same data), so that answer is remembered.
    def parse_comment(self, i: int, report: bool = True) -> int:
        return self._unless_unterminated("comment", i, lambda: super(_TextRenderer, self).parse_comment(i, report))

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        keyword = _MARKED_SECTION.match(self.rawdata, i + 3)
        kind = f"marked:{keyword.group(0).lower() in _OFFICE_SECTIONS}" if keyword else "marked"
        return self._unless_unterminated(kind, i, lambda: super(_TextRenderer, self).parse_marked_section(i, report))

    def _unless_unterminated(self, kind: str, i: int, parse: Callable[[], int]) -> int:
        known = self.unterminated.get(kind)
        if known is not None and known[0] is self.rawdata and i >= known[1]:
            return -1
        end = parse()
        if end < 0:
            self.unterminated[kind] = (self.rawdata, i)
        return end

    # Block structure -------------------------------------------------------------
    def _break(self, blank: bool = False) -> None:
        line = "".join(self.current).strip()
        self.current = []
        prefix = "> " * self.quote_depth
        if line:
            self.lines.append(prefix + line)
        if blank and self.lines and self.lines[-1].strip("> "):
            self.lines.append(prefix.rstrip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _INVISIBLE:
            self.invisible += 1
        elif tag == "br":
            if "".join(self.current).strip():
                self._break()
            else:  # an empty line made of <br>: keep it as a blank line (Gmail, Outlook)
                self._break(blank=True)
        elif tag == "hr":
            self._break()
            self.lines.append("> " * self.quote_depth + "-----")
        elif tag == "blockquote":
            self._break()
            self.quote_depth += 1
        elif tag in _PARAGRAPH:
            # Word's HTML (Outlook) writes every line as <p class=MsoNormal>: those are
            # lines, not paragraphs, or the text would come out double-spaced.
            word_line = any(k == "class" and v and v.lower().startswith("mso") for k, v in attrs)
            self._break(blank=not word_line)
            self.paragraphs.append(word_line)
            self.pre += tag == "pre"
        elif tag in ("td", "th"):
            self.current.append(" ")
        elif tag in _BLOCK:
            self._break()
            if tag == "li":
                self.current.append("- ")
        elif tag == "a":
            self.href_stack.append(dict(attrs).get("href"))
            self.link_text.append(len("".join(self.current)))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt and not self.invisible:
                self.current.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _INVISIBLE:
            self.invisible = max(0, self.invisible - 1)
        elif tag == "blockquote":
            self._break()
            self.quote_depth = max(0, self.quote_depth - 1)
        elif tag in _PARAGRAPH:
            word_line = self.paragraphs.pop() if self.paragraphs else False
            self._break(blank=not word_line)
            self.pre = max(0, self.pre - (tag == "pre"))
        elif tag in _BLOCK:
            self._break()
        elif tag == "a" and self.href_stack:
            self._end_link()

    def _end_link(self) -> None:
        href = (self.href_stack.pop() or "").strip()
        start = self.link_text.pop()
        shown = "".join(self.current)[start:].strip()
        if href.lower().startswith(("http://", "https://")) and href not in shown and shown:
            self.current.append(f" <{href}>")

    def handle_data(self, data: str) -> None:
        if self.invisible:
            return
        if self.pre:
            for i, chunk in enumerate(data.split("\n")):
                if i:
                    self.current.append(chunk)
                    self._break()
                else:
                    self.current.append(chunk)
            return
        self.current.append(_SPACES.sub(" ", data))

    def text(self) -> str:
        self._break()
        out: list[str] = []
        for line in self.lines:
            if not line.strip("> ") and out and not out[-1].strip("> "):
                continue  # at most one blank line in a row
            out.append(line.rstrip())
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """A readable plain-text rendering of ``html`` (never raises on bad markup)."""
    html = clip_html(html)
    renderer = _TextRenderer()
    try:
        renderer.feed(_UNCLOSED_LT.sub("&lt;", html))
        renderer.close()
    except AssertionError:
        # html.parser (3.10+) raises AssertionError on some malformed declarations
        # such as "<![x" or "<!DOCTYPE [": fall back to dropping tags.
        return _crude_text(html)
    return renderer.text()


_INVISIBLE_OPEN = re.compile(r"<(script|style|head)\b", re.I)
_INVISIBLE_CLOSE = {name: re.compile(rf"</{name}\s*+>", re.I) for name in ("script", "style", "head")}


def _crude_text(html: str) -> str:
    text = _drop_invisible(html)
    text = re.sub(r"(?i)<br\s*+/?>|</(p|div|tr|li|h[1-6])\s*+>", "\n", text)
    # "<[^>]*>" over the whole text scanned to its end from every "<" after the last
    # ">" (quadratic); no tag can start there, so that tail is left as it is.
    last = text.rfind(">") + 1
    text = unescape(re.sub(r"<[^>]*>", " ", text[:last]) + text[last:])
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _drop_invisible(html: str) -> str:
    """``html`` without <script>/<style>/<head> elements, each replaced by a space.

    As ``re.sub(r"(?is)<(script|style|head)\\b.*?</\\1\\s*>", " ", html)``, which
    rescanned the rest of the text from every unclosed opening tag (quadratic).
    """
    out: list[str] = []
    pos = search_from = 0
    unclosed: set[str] = set()  # no closing tag from some point on: none later either
    while (opening := _INVISIBLE_OPEN.search(html, search_from)) is not None:
        name = opening.group(1).lower()
        closing = None if name in unclosed else _INVISIBLE_CLOSE[name].search(html, opening.end())
        if closing is None:
            unclosed.add(name)
            search_from = opening.end()
            continue
        out.append(html[pos : opening.start()] + " ")
        pos = search_from = closing.end()
    out.append(html[pos:])
    return "".join(out)
