"""Teams thread posts link a customer's files to their signed downloads (shared view model)."""

from __future__ import annotations

import uuid

from bots.surface import views
from bots.teams import cards
from core.tickets.models import Direction


def test_a_post_links_each_file_and_its_name_cannot_hide_another_link() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="see files", attachments=[("invoice.pdf", 10), ("x](https://evil.example)", 5)],
                             links=["https://tl.example/attachments/v1.a", "https://tl.example/attachments/v1.b"])
    line = cards.post_card(post)["body"][-1]["text"]
    first, second = (f"[{cards.outside(name)}]({url})" for name, url in zip(post.attachments, post.links, strict=True))
    assert line == f"📎 {first}, {second}"
    assert "](https://evil.example)" not in line and "](https://tl.example/attachments/v1.a)" in line


def test_without_links_the_names_are_listed_as_before() -> None:
    post = views.thread_post(message_id=uuid.uuid4(), author="Bob", direction=Direction.INBOUND, reply_text=None,
                             body_text="see files", attachments=[("a.pdf", 1)])
    assert cards.post_card(post)["body"][-1]["text"] == "📎 " + cards.outside("a.pdf (1 B)")
