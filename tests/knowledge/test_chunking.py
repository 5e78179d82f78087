"""Chunking keeps heading paths, never crosses a heading, and keeps code for drafts to quote."""

from __future__ import annotations

import pytest

from knowledge.chunking import (
    Chunk,
    DocFormat,
    Section,
    chunk_document,
    embedding_text,
    format_for,
    is_code,
    pack,
    parse,
)

MARKDOWN = """---
title: Billing guide
---
Intro paragraph before any heading.

# Invoices

Invoices are sent on the first day of the month.

## Changing the billing address

Open **Settings**, then [Billing](https://example.test/billing), and edit the address.

```
$ acme billing set-address "1 Main St"
```

Setext title
------------

Under a setext heading.
"""

RST = """..
  A comment that readers never see.

.. _label:

############
Backing up
############

You can back up now. Run the following command::

    $ restic backup ~/work

Excluding files
***************

Use ``--exclude`` and see :ref:`the manual <manual>` or `the site <https://restic.net>`__.

.. note:: Patterns are case sensitive.

* first item
* second item

Deeper
======

Deep text.
"""

HTML = """<html><head><title>Widget FAQ</title><style>p{}</style></head><body>
<nav>Home | Docs</nav>
<h1>Widget</h1><p>The widget sits on your site.</p>
<h2>Install</h2><p>Paste the <code>script</code> tag.</p><pre>  &lt;script src="w.js"&gt;&lt;/script&gt;
</pre>
<h2>Colours</h2><ul><li>Red</li><li>Blue</li></ul>
<script>alert(1)</script>
</body></html>"""


def headings(chunks: list[Chunk]) -> list[str]:
    return list(dict.fromkeys(c.heading for c in chunks))


def test_markdown_sections_follow_the_heading_tree_and_front_matter_gives_the_title() -> None:
    doc, chunks = chunk_document(MARKDOWN, DocFormat.MARKDOWN, fallback_title="x")
    assert doc.title == "Billing guide"
    assert headings(chunks) == ["", "Invoices", "Invoices > Changing the billing address", "Invoices > Setext title"]


def test_markdown_inline_markup_is_stripped_and_fenced_code_kept_as_code() -> None:
    _, chunks = chunk_document(MARKDOWN, DocFormat.MARKDOWN, fallback_title="x")
    text = next(c.text for c in chunks if c.heading.endswith("billing address"))
    assert "Open Settings, then Billing, and edit the address." in text
    assert '    $ acme billing set-address "1 Main St"' in text


def test_rst_titles_by_adornment_style_and_comments_and_targets_dropped() -> None:
    doc, chunks = chunk_document(RST, DocFormat.RST, fallback_title="x")
    assert doc.title == "Backing up"
    assert headings(chunks) == ["Backing up", "Backing up > Excluding files", "Backing up > Excluding files > Deeper"]
    assert all("comment" not in c.text and "_label" not in c.text for c in chunks)


def test_rst_literal_block_after_double_colon_is_code_and_the_colon_kept_single() -> None:
    _, chunks = chunk_document(RST, DocFormat.RST, fallback_title="x")
    first = chunks[0].text.split("\n\n")
    assert first == ["You can back up now. Run the following command:", "    $ restic backup ~/work"]


def test_rst_roles_links_notes_and_list_items_become_plain_paragraphs() -> None:
    _, chunks = chunk_document(RST, DocFormat.RST, fallback_title="x")
    text = next(c.text for c in chunks if c.heading == "Backing up > Excluding files").split("\n\n")
    assert text == ["Use --exclude and see the manual or the site.", "Note: Patterns are case sensitive.",
                    "* first item", "* second item"]


def test_html_headings_blocks_and_pre_while_script_style_and_nav_are_dropped() -> None:
    doc, chunks = chunk_document(HTML, DocFormat.HTML, fallback_title="x")
    assert doc.title == "Widget FAQ"
    assert headings(chunks) == ["Widget", "Widget > Install", "Widget > Colours"]
    install = next(c.text for c in chunks if c.heading == "Widget > Install")
    assert install == 'Paste the script tag.\n\n    <script src="w.js"></script>'
    assert all("alert" not in c.text and "Home" not in c.text and "p{}" not in c.text for c in chunks)


def test_plain_text_title_is_its_first_short_line() -> None:
    doc, chunks = chunk_document("Reset your password\n\nClick the link.\nIt expires in 1 hour.", DocFormat.TEXT,
                                 fallback_title="file")
    assert (doc.title, [c.text for c in chunks]) == ("Reset your password",
                                                     ["Reset your password\n\nClick the link. It expires in 1 hour."])


def test_long_sections_split_at_sentences_within_the_limit_and_never_across_headings() -> None:
    sentence = "This sentence is about forty characters. "
    sections = [Section(("A",), (sentence * 30,)), Section(("A", "B"), ("Short.",))]
    chunks = pack(sections, max_chars=200)
    assert all(len(c.text) <= 200 for c in chunks)
    assert [c.heading for c in chunks][-1] == "A > B" and chunks[-1].text == "Short."
    assert " ".join(c.text for c in chunks[:-1]) == (sentence * 30).strip()


def test_embedding_text_has_the_heading_path_and_leaves_code_out() -> None:
    chunk = Chunk(0, ("Backing up", "Excluding files"), "Use patterns:\n\n    $ restic backup --exclude x")
    assert embedding_text("Backing up", chunk) == "Backing up > Excluding files\n\nUse patterns:"
    only_code = Chunk(1, ("Other",), "    $ restic init")
    assert embedding_text("Guide", only_code) == "Guide > Other\n\n    $ restic init"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.md", DocFormat.MARKDOWN), ("b.RST", DocFormat.RST), ("c.htm", DocFormat.HTML), ("d.txt", DocFormat.TEXT),
     ("e.pdf", None)],
)
def test_format_by_suffix(name: str, fmt: DocFormat | None) -> None:
    assert format_for(name) == fmt


def test_is_code_means_every_line_indented() -> None:
    assert is_code("    a\n\n    b") and not is_code("    a\nb")


def test_a_document_without_title_uses_the_fallback() -> None:
    assert parse("just text that is long " * 10, DocFormat.TEXT, fallback_title="Fallback").title == "Fallback"
