"""Heading-aware chunking of Markdown, reStructuredText, HTML and plain text (pure, no I/O).

Each format is parsed into sections (a heading path and its paragraphs); chunks never cross a
heading, and a long section is packed into several chunks at paragraph (then sentence)
boundaries. Code blocks are kept, indented by four spaces, so drafts can quote commands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from html.parser import HTMLParser
from pathlib import PurePath

# Bump when chunking changes: ingest then replaces documents even when their bytes did not.
CHUNKER_VERSION = 1
DEFAULT_MAX_CHARS = 900
CODE_INDENT = "    "
HEADING_SEPARATOR = " > "


class DocFormat(StrEnum):
    MARKDOWN = "markdown"
    RST = "rst"
    HTML = "html"
    TEXT = "text"


SUFFIXES: dict[str, DocFormat] = {
    ".md": DocFormat.MARKDOWN,
    ".markdown": DocFormat.MARKDOWN,
    ".rst": DocFormat.RST,
    ".rest": DocFormat.RST,
    ".html": DocFormat.HTML,
    ".htm": DocFormat.HTML,
    ".txt": DocFormat.TEXT,
    ".text": DocFormat.TEXT,
}


def format_for(path: str | PurePath) -> DocFormat | None:
    return SUFFIXES.get(PurePath(path).suffix.lower())


@dataclass(frozen=True)
class Section:
    headings: tuple[str, ...]
    paragraphs: tuple[str, ...]


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    headings: tuple[str, ...]
    text: str

    @property
    def heading(self) -> str:
        return HEADING_SEPARATOR.join(self.headings)


@dataclass(frozen=True)
class ParsedDocument:
    title: str
    format: DocFormat
    sections: tuple[Section, ...]


def is_code(paragraph: str) -> bool:
    return all(line.startswith(CODE_INDENT) or not line.strip() for line in paragraph.split("\n"))


# --------------------------------------------------------------------------- shared helpers


class _Builder:
    """Collects paragraphs under the current heading path."""

    def __init__(self) -> None:
        self.sections: list[Section] = []
        self.path: list[tuple[int, str]] = []
        self.paragraphs: list[str] = []

    def heading(self, level: int, title: str) -> None:
        self.flush()
        while self.path and self.path[-1][0] >= level:
            self.path.pop()
        self.path.append((level, title))

    def paragraph(self, text: str) -> None:
        if text.strip():
            self.paragraphs.append(text.rstrip())

    def flush(self) -> None:
        if self.paragraphs:
            self.sections.append(Section(tuple(t for _, t in self.path), tuple(self.paragraphs)))
        elif self.path:  # a heading with no text of its own still names a topic
            self.sections.append(Section(tuple(t for _, t in self.path), ()))
        self.paragraphs = []

    def done(self) -> list[Section]:
        self.flush()
        return [s for s in self.sections if s.paragraphs]


def _blocks(lines: list[str]) -> list[list[str]]:
    """Split lines into blank-line separated blocks."""
    out: list[list[str]] = []
    cur: list[str] = []
    for line in lines:
        if line.strip():
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _prose(lines: list[str]) -> str:
    return " ".join(" ".join(line.split()) for line in lines)


def _code(lines: list[str]) -> str:
    indent = min((len(x) - len(x.lstrip()) for x in lines if x.strip()), default=0)
    return "\n".join(CODE_INDENT + x[indent:].rstrip() if x.strip() else "" for x in lines).strip("\n")


# --------------------------------------------------------------------------- reStructuredText

_RST_ADORNMENT = re.compile(r"""^([=\-~^"'`:#*+_.<>!$%&,;?@\\|/])\1{2,}\s*$""")
_RST_DIRECTIVE = re.compile(r"^\.\.\s+([\w:-]+)::\s*(.*)$")
_RST_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^>]*>)?`")
_RST_LINK = re.compile(r"`([^`<]+?)\s*<([^>]+)>`__?")
_RST_REF = re.compile(r"`([^`]+)`__?")
_RST_LITERAL = re.compile(r"``(.+?)``")
_RST_STRONG = re.compile(r"\*\*(.+?)\*\*")
_RST_EMPH = re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")
_RST_SUBST = re.compile(r"\|([\w -]+)\|")
_LIST_ITEM = re.compile(r"^\s*([-*+•]|#\.|\d+[.)]|\(\d+\))\s+\S")
_CODE_DIRECTIVES = {"code-block", "code", "sourcecode", "highlight", "literalinclude", "parsed-literal"}
_ADMONITIONS = {"note", "warning", "tip", "important", "hint", "caution", "attention", "danger", "seealso"}
_SKIP_DIRECTIVES = {"toctree", "image", "figure", "include", "only", "raw", "index", "contents", "meta",
                    "highlight", "literalinclude", "automodule", "autoclass", "csv-table"}


def rst_inline(text: str) -> str:
    text = _RST_LINK.sub(lambda m: m.group(1) if m.group(1) != m.group(2) else m.group(2), text)
    text = _RST_ROLE.sub(r"\1", text)
    text = _RST_LITERAL.sub(r"\1", text)
    text = _RST_REF.sub(r"\1", text)
    text = _RST_STRONG.sub(r"\1", text)
    text = _RST_EMPH.sub(r"\1", text)
    return _RST_SUBST.sub(r"\1", text)


def _rst_heading_at(lines: list[str], i: int) -> tuple[str, str, int] | None:
    """(title, style, lines consumed) when a heading starts at line i."""
    line = lines[i]
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    if _RST_ADORNMENT.match(line) and i + 2 < len(lines):  # overline, title, underline
        title, under = lines[i + 1].strip(), lines[i + 2]
        if title and under.strip() == line.strip() and len(line.strip()) >= len(title):
            return title, "o" + line.strip()[0], 3
    if line.strip() and not line[0].isspace() and _RST_ADORNMENT.match(nxt) and len(nxt.strip()) >= len(line.strip()):
        if not line.startswith(".."):
            return line.strip(), "u" + nxt.strip()[0], 2
    return None


def parse_rst(source: str) -> tuple[str | None, list[Section]]:
    lines = source.replace("\t", "    ").splitlines()
    styles: list[str] = []
    b = _Builder()
    title: str | None = None
    i = 0
    para: list[str] = []
    literal_next = False
    tops = 0  # titles at the top level: more than one means the file has no single title

    def end_para() -> None:
        nonlocal para, literal_next
        if para:
            text = rst_inline(_prose(para))
            if text.endswith("::"):
                literal_next = True
                text = text[:-2].rstrip() + (":" if not text[:-2].endswith(" ") else "")
            b.paragraph(text.strip())
            para = []

    def indented_block(start: int, base: int) -> int:
        """Index after the block indented deeper than `base` starting at `start` (blank lines inside allowed)."""
        j = start
        while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > base):
            j += 1
        while j > start and not lines[j - 1].strip():
            j -= 1
        return j

    while i < len(lines):
        line = lines[i]
        # A title follows a blank line (or another title); inside a paragraph it is just text.
        heading = None if para else _rst_heading_at(lines, i)
        if heading:
            end_para()
            text, style, used = heading
            if style not in styles:
                styles.append(style)
            text = rst_inline(text)
            tops += styles.index(style) == 0
            title = title or text
            b.heading(styles.index(style), text)
            i += used
            literal_next = False
            continue
        if not line.strip():
            end_para()
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if indent == 0 and _LIST_ITEM.match(line):  # each list item is its own paragraph
            end_para()
        if indent == 0 and stripped.startswith(".."):
            end_para()
            m = _RST_DIRECTIVE.match(stripped)
            end = indented_block(i + 1, 0)
            body = lines[i + 1:end]
            if m is None:  # comment, target (.. _label:) or footnote: not reader text
                i = end
                continue
            name = m.group(1).lower()
            while body and re.match(r"^\s+:[\w -]+:", body[0]):  # directive options
                body = body[1:]
            if name in _CODE_DIRECTIVES and name not in {"highlight", "literalinclude"}:
                for block in _blocks(body):
                    b.paragraph(_code(block))
            elif name not in _SKIP_DIRECTIVES:
                label = m.group(2).strip()
                admonition = name in _ADMONITIONS
                content = [x[3:] if x.startswith("   ") else x.lstrip() for x in body]
                if label and admonition:  # ".. note:: text" starts the note's own text
                    content = [label, *content]
                elif label:
                    b.paragraph(rst_inline(label))
                prefix = f"{name.capitalize()}: " if admonition else ""
                for k, block in enumerate(_blocks(content)):
                    if all(x.startswith(CODE_INDENT) for x in block):
                        b.paragraph(_code(block))
                    else:
                        b.paragraph((prefix if k == 0 else "") + rst_inline(_prose(block)))
            i = end
            continue
        if indent > 0 and not para:
            end = indented_block(i, indent - 1)
            block = lines[i:end]
            if literal_next:
                b.paragraph(_code(block))
            else:  # block quote, definition body or list continuation: plain prose
                for blk in _blocks(block):
                    b.paragraph(rst_inline(_prose(blk)))
            literal_next = False
            i = end
            continue
        literal_next = False
        para.append(line)
        i += 1
    end_para()
    return (title if tops == 1 else None), b.done()


# --------------------------------------------------------------------------- Markdown

_MD_ATX = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_SETEXT = re.compile(r"^ {0,3}(=+|-+)\s*$")
_MD_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)[^)]*\)")
_MD_CODE = re.compile(r"`([^`]+)`")
_MD_EMPH = re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1")
_MD_COMMENT = re.compile(r"<!--.*?-->", re.S)


def md_inline(text: str) -> str:
    text = _MD_IMAGE.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _MD_CODE.sub(r"\1", text)
    return _MD_EMPH.sub(r"\2", text)


def parse_markdown(source: str) -> tuple[str | None, list[Section]]:
    source = _MD_COMMENT.sub("", source)
    lines = source.replace("\t", "    ").splitlines()
    title: str | None = None
    if lines and lines[0].strip() == "---":  # YAML front matter
        end = next((k for k in range(1, len(lines)) if lines[k].strip() in {"---", "..."}), None)
        if end is not None:
            for meta in lines[1:end]:
                if meta.lower().startswith("title:"):
                    title = meta.split(":", 1)[1].strip().strip("\"'") or None
            lines = lines[end + 1:]
    b = _Builder()
    para: list[str] = []
    code: list[str] | None = None
    fence = ""

    def end_para() -> None:
        nonlocal para
        if para:
            b.paragraph(md_inline(_prose(para)))
            para = []

    for line in lines:
        if code is not None:
            if line.strip().startswith(fence):
                b.paragraph(_code(code) if any(x.strip() for x in code) else "")
                code = None
            else:
                code.append(line)
            continue
        fm = _MD_FENCE.match(line)
        if fm:
            end_para()
            code, fence = [], fm.group(1)[0] * 3
            continue
        atx = _MD_ATX.match(line)
        if atx:
            end_para()
            text = md_inline(atx.group(2))
            title = title or (text if len(atx.group(1)) == 1 else None)
            b.heading(len(atx.group(1)), text)
            continue
        setext = _MD_SETEXT.match(line)
        if setext and len(para) == 1:
            text = md_inline(para[0].strip())
            para = []
            level = 1 if setext.group(1)[0] == "=" else 2
            title = title or (text if level == 1 else None)
            b.heading(level, text)
            continue
        if not line.strip():
            end_para()
            continue
        if line.startswith(CODE_INDENT) and not para:
            b.paragraph(CODE_INDENT + line.strip())  # indented code, merged below
            continue
        if _LIST_ITEM.match(line) and para:  # each list item is its own paragraph
            end_para()
        para.append(line)
    end_para()
    if code:
        b.paragraph(_code(code))
    sections = [Section(s.headings, _merge_code_lines(s.paragraphs)) for s in b.done()]
    if title is None:
        title = next((s.headings[0] for s in sections if s.headings), None)
    return title, sections


def _merge_code_lines(paragraphs: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for p in paragraphs:
        if out and is_code(p) and is_code(out[-1]) and "\n" not in p:
            out[-1] = out[-1] + "\n" + p
        else:
            out.append(p)
    return tuple(out)


# --------------------------------------------------------------------------- HTML

_BLOCK_TAGS = {"p", "div", "li", "dt", "dd", "tr", "blockquote", "section", "article", "table", "ul", "ol",
               "br", "hr", "main", "figcaption", "td", "th"}
_SKIP_TAGS = {"script", "style", "nav", "noscript", "template", "svg", "head", "footer", "form"}


class _HtmlSections(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.b = _Builder()
        self.title: str | None = None
        self.first_h1: str | None = None
        self._text: list[str] = []
        self._heading: int | None = None
        self._skip = 0
        self._pre = 0
        self._in_title = False
        self._title_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._end_block()
            self._heading = int(tag[1])
        elif tag == "pre":
            self._end_block()
            self._pre += 1
        elif tag in _BLOCK_TAGS:
            self._end_block()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self.title = " ".join("".join(self._title_text).split()) or None
        if tag in _SKIP_TAGS:
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            text = " ".join("".join(self._text).split())
            self._text = []
            if text:
                if self._heading == 1 and self.first_h1 is None:
                    self.first_h1 = text
                self.b.heading(self._heading, text)
            self._heading = None
        elif tag == "pre":
            code = "".join(self._text)
            self._text = []
            self._pre = max(0, self._pre - 1)
            lines = code.strip("\n").split("\n")
            if any(x.strip() for x in lines):
                self.b.paragraph(_code(lines))
        elif tag in _BLOCK_TAGS:
            self._end_block()

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_text.append(data)
        elif not self._skip:
            self._text.append(data)

    def _end_block(self) -> None:
        if self._heading is None and not self._pre:
            text = " ".join("".join(self._text).split())
            if text:
                self.b.paragraph(text)
            self._text = []


def parse_html(source: str) -> tuple[str | None, list[Section]]:
    parser = _HtmlSections()
    parser.feed(source)
    parser.close()
    parser._end_block()
    return parser.title or parser.first_h1, parser.b.done()


# --------------------------------------------------------------------------- plain text


def parse_text(source: str) -> tuple[str | None, list[Section]]:
    blocks = _blocks(source.replace("\t", "    ").splitlines())
    paragraphs = tuple(_code(bl) if all(x.startswith(CODE_INDENT) for x in bl) else _prose(bl) for bl in blocks)
    first = paragraphs[0] if paragraphs else ""
    title = first if first and len(first) <= 120 and "\n" not in first else None
    return title, [Section((), paragraphs)] if paragraphs else []


# --------------------------------------------------------------------------- packing

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(`])")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _pieces(paragraph: str, max_chars: int) -> list[str]:
    """A paragraph no longer than max_chars, split at sentences (code: at lines) when longer."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    units = paragraph.split("\n") if is_code(paragraph) else split_sentences(paragraph)
    joiner = "\n" if is_code(paragraph) else " "
    out: list[str] = []
    cur = ""
    for unit in units:
        while len(unit) > max_chars:  # a single enormous sentence or line
            if cur:
                out.append(cur)
                cur = ""
            out.append(unit[:max_chars])
            unit = unit[max_chars:]
        if cur and len(cur) + len(joiner) + len(unit) > max_chars:
            out.append(cur)
            cur = unit
        else:
            cur = f"{cur}{joiner}{unit}" if cur else unit
    if cur:
        out.append(cur)
    return out


def pack(sections: list[Section] | tuple[Section, ...], *, max_chars: int = DEFAULT_MAX_CHARS) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in sections:
        cur: list[str] = []
        size = 0
        for paragraph in section.paragraphs:
            for piece in _pieces(paragraph, max_chars):
                if cur and size + 2 + len(piece) > max_chars:
                    chunks.append(Chunk(len(chunks), section.headings, "\n\n".join(cur)))
                    cur, size = [], 0
                cur.append(piece)
                size += len(piece) + 2
        if cur:
            chunks.append(Chunk(len(chunks), section.headings, "\n\n".join(cur)))
    return chunks


_PARSERS = {
    DocFormat.MARKDOWN: parse_markdown,
    DocFormat.RST: parse_rst,
    DocFormat.HTML: parse_html,
    DocFormat.TEXT: parse_text,
}


def parse(source: str, fmt: DocFormat, *, fallback_title: str) -> ParsedDocument:
    title, sections = _PARSERS[fmt](source)
    return ParsedDocument((title or fallback_title).strip()[:500], fmt, tuple(sections))


def chunk_document(
    source: str, fmt: DocFormat, *, fallback_title: str, max_chars: int = DEFAULT_MAX_CHARS
) -> tuple[ParsedDocument, list[Chunk]]:
    doc = parse(source, fmt, fallback_title=fallback_title)
    return doc, pack(doc.sections, max_chars=max_chars)


def embedding_text(title: str, chunk: Chunk) -> str:
    """What gets embedded: the heading path (title first) and the prose of the passage.

    Code and console output are left out of the vector (they are noise to a sentence model and
    cost tokens; measured on bench/kb_eval_restic.jsonl: MRR 0.821 → 0.845, ingest 30% faster);
    full-text search and the drafts still see them. A passage that is only code keeps its code.
    """
    path = list(chunk.headings)
    if not path or path[0] != title:
        path.insert(0, title)
    prose = [p for p in chunk.text.split("\n\n") if not is_code(p)]
    return HEADING_SEPARATOR.join(path) + "\n\n" + ("\n\n".join(prose) if prose else chunk.text)
