"""Outside text reaches Slack escaped and within Block Kit's limits, however hostile or long it is."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from sqlalchemy import select

from bots.slack import blocks
from bots.slack import text as st
from bots.surface import views
from core.db.session import system_scope
from core.tickets.models import Channel, DeliveryState, Direction, Message, Priority, TicketStatus
from tests.bots.slack.conftest import SlackWorld, wait_until
from tests.inbound.ingest.helpers import deliver, mail
from tests.support.jobs import drain_jobs

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
OUR_LINK = re.compile(r"<https?://[^\s<>|]*\|link>")  # the only `<` we write ourselves
BAD_AMP = re.compile(r"&(?!amp;|lt;|gt;)")


# ---- builders over outside text ----

def _card(*, subject: str = "Backup fails", customer: str = "Bob <bob@c.test>", assignee: str | None = None,
          number: int = 42) -> views.TicketCard:
    return views.ticket_card(
        ticket_id=uuid.uuid4(), number=number, subject=subject, customer=customer, origin=Channel.EMAIL,
        status=TicketStatus.NEW, priority=Priority.HIGH, assignee=assignee, created_at=NOW - timedelta(hours=3),
        now=NOW, explicit_mode=True,
    )


def _post(*, author: str = "Bob", body: str = "hello", names: list[str] | None = None) -> views.ThreadPost:
    return views.thread_post(message_id=uuid.uuid4(), author=author, direction=Direction.INBOUND, reply_text=None,
                             body_text=body, attachments=[(n, 2048) for n in names or []])


def _notice(*, error: str | None, recipient: str = "bob@c.test",
            state: DeliveryState = DeliveryState.FAILED) -> views.ReplyNotice:
    return views.reply_notice(message_id=uuid.uuid4(), recipient=recipient, origin=Channel.EMAIL, state=state,
                              seconds_left=10, error=error)


def _draft(*, text: str = "Run restic unlock.", sources: list[tuple[str, str]] | None = None,
           decided_by: str | None = None, state: str = "pending") -> views.DraftCard:
    citations: list[dict[str, object]] = [{"title": t, "url": w} for t, w in sources or []]
    return views.draft_card(draft_id=uuid.uuid4(), text=text, citations=citations, confidence=0.82, state=state,
                            decided_by=decided_by)


# ---- what Slack would refuse ----

def _text_objects(node: Any, parent: str = "") -> Iterator[tuple[str, str]]:
    """(where, text) for every text object in a block or view dict."""
    if isinstance(node, dict):
        if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
            yield parent, node["text"]
        for key, value in node.items():
            yield from _text_objects(value, f"{parent}.{node.get('type', key)}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from _text_objects(item, parent)


def _limit(where: str) -> int:
    if ".button." in where:
        return st.BUTTON_TEXT
    if ".fields" in where:
        return st.SECTION_FIELD
    if ".context." in where:
        return st.CONTEXT_TEXT
    return st.SECTION_TEXT


def assert_sendable(built: list[Block] | View, *, most_blocks: int = st.MESSAGE_BLOCKS) -> dict[str, Any]:
    """slack_sdk's own validation, plus the limits Slack checks and slack_sdk does not."""
    if isinstance(built, View):
        dumped = built.to_dict()
        assert 1 <= st.units(dumped["title"]["text"]) <= st.MODAL_TITLE
        most_blocks = st.MODAL_BLOCKS
    else:
        dumped = {"blocks": [b.to_dict() for b in built]}  # raises SlackObjectFormationError if invalid
    assert len(dumped["blocks"]) <= most_blocks
    for where, text in _text_objects(dumped["blocks"]):
        assert text.strip(), f"empty text at {where}"
        assert st.units(text) <= _limit(where), f"{st.units(text)} units at {where}"
    for block in dumped["blocks"]:
        for element in block.get("elements", []):
            assert len(element.get("value", "")) <= 2000
            assert st.units(element.get("initial_value", "")) <= st.INPUT_VALUE
    return dumped


def _shown(dumped: dict[str, Any]) -> list[str]:
    return [text for _where, text in _text_objects(dumped["blocks"])]


# ---- escaping ----

def test_channel_mention_in_a_subject_reaches_slack_as_literal_text() -> None:
    card = _card(subject="<!channel> help")
    dumped = assert_sendable(blocks.card_blocks(card))
    assert dumped["blocks"][0]["text"]["text"] == "*#42 &lt;!channel&gt; help*"
    assert blocks.card_text(card) == "#42 &lt;!channel&gt; help — Bob &lt;bob@c.test&gt; (new)"


def test_channel_mention_in_a_delivery_error_reaches_slack_as_literal_text() -> None:
    notice = _notice(error="550 5.1.1 <!channel> <@U123> <http://evil.test|click>")
    dumped = assert_sendable(blocks.notice_blocks(notice))
    escaped = "550 5.1.1 &lt;!channel&gt; &lt;@U123&gt; &lt;http://evil.test|click&gt;"
    assert dumped["blocks"][0]["text"]["text"] == f":x: Email to bob@c.test: failed: {escaped}"
    assert blocks.notice_text(notice) == f"Email to bob@c.test: failed: {escaped}"
    assert blocks.failure_text(views.delivery_failure(notice.error)) == \
        f":x: The reply was not delivered: {escaped}"


def test_an_escaped_looking_subject_round_trips_as_typed() -> None:
    dumped = assert_sendable(blocks.card_blocks(_card(subject="a &lt; b & c")))
    assert dumped["blocks"][0]["text"]["text"] == "*#42 a &amp;lt; b &amp; c*"


def test_message_text_and_author_are_escaped_in_blocks_and_fallback() -> None:
    post = _post(author="Eve <!here>", body="ping <!channel> & <@U1>")
    dumped = assert_sendable(blocks.post_blocks(post, with_original=False))
    assert dumped["blocks"][1]["text"]["text"] == "ping &lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert blocks.post_text(post) == "Eve &lt;!here&gt;: ping &lt;!channel&gt; &amp; &lt;@U1&gt;"


def test_a_kb_link_cannot_break_out_into_a_mention_or_a_second_link() -> None:
    card = _draft(sources=[("Locks <!channel>", "https://kb.test/a?x=1&y=2|click> <!channel>")])
    dumped = assert_sendable(blocks.draft_blocks(card))
    sources = dumped["blocks"][2]["elements"][0]["text"]
    assert sources == ("*Sources*\n• Locks &lt;!channel&gt; — "
                       "<https://kb.test/a?x=1&amp;y=2%7Cclick%3E%20%3C!channel%3E|link>")


def test_a_non_http_source_is_shown_as_text_not_as_a_link() -> None:
    card = _draft(sources=[("Doc", "javascript:alert(1)>"), ("Path", "docs/070_encryption.rst")])
    text = assert_sendable(blocks.draft_blocks(card))["blocks"][2]["elements"][0]["text"]
    assert text == "*Sources*\n• Doc — `javascript:alert(1)&gt;`\n• Path — `docs/070_encryption.rst`"


# ---- cutting, with the cut marked ----

def test_a_10000_character_subject_is_cut_with_an_ellipsis() -> None:
    card = _card(subject="s" * 10_000)
    section = assert_sendable(blocks.card_blocks(card))["blocks"][0]["text"]["text"]
    assert section.endswith("…*") and len(section) == st.SECTION_TEXT
    assert "…" in blocks.card_text(card) and len(blocks.card_text(card)) <= st.MESSAGE_TEXT


def test_a_subject_that_grows_when_escaped_still_fits() -> None:
    section = assert_sendable(blocks.card_blocks(_card(subject="<" * 2_990)))["blocks"][0]["text"]["text"]
    assert section.endswith("&lt;…*") and st.units(section) <= st.SECTION_TEXT


def test_a_100_kb_message_is_cut_and_offers_the_full_original() -> None:
    post = _post(body="m" * 100_000)
    dumped = assert_sendable(blocks.post_blocks(post, with_original=post.truncated))
    assert dumped["blocks"][1]["text"]["text"].endswith("…")
    assert dumped["blocks"][-1]["elements"][0]["action_id"] == "tl_view_original"
    assert len(blocks.post_text(post)) <= st.MESSAGE_TEXT


def test_a_message_cut_only_by_escaping_still_offers_the_full_original() -> None:
    post = _post(body="&" * 2_000)  # 2,000 characters, 10,000 once escaped
    assert not post.truncated
    dumped = assert_sendable(blocks.post_blocks(post, with_original=post.truncated))
    assert dumped["blocks"][1]["text"]["text"].endswith("&amp;…")
    assert dumped["blocks"][-1]["elements"][0]["action_id"] == "tl_view_original"


def test_2000_attachments_with_300_character_names_are_listed_as_far_as_they_fit() -> None:
    post = _post(names=[f"{i:04d}" + "n" * 296 for i in range(2_000)])
    line = assert_sendable(blocks.post_blocks(post, with_original=post.truncated))["blocks"][2]["elements"][0]["text"]
    assert line.startswith(":paperclip: 0000nnn") and re.search(r"… \(2\.0 KB\), … and 19\d\d more$", line)


def test_a_500_character_file_name_is_shortened_and_keeps_its_size() -> None:
    post = _post(names=["f" * 500])
    line = assert_sendable(blocks.post_blocks(post, with_original=False))["blocks"][2]["elements"][0]["text"]
    assert line == ":paperclip: " + "f" * (views.MAX_FILE_NAME - 1) + "… (2.0 KB)"


def test_a_100_kb_delivery_error_is_cut_and_says_where_the_rest_is() -> None:
    notice = _notice(error="<" * 100_000)
    section = assert_sendable(blocks.notice_blocks(notice))["blocks"][0]["text"]["text"]
    assert section.endswith("&lt;… (cut; the whole error is in the ticket's timeline)")
    failure = blocks.failure_text(views.delivery_failure(notice.error))
    assert failure.endswith("(cut; the whole error is in the ticket's timeline)") and len(failure) < 3_000


def test_a_long_draft_is_cut_with_a_note_before_its_buttons() -> None:
    card = _draft(text="&" * 5_000)
    dumped = assert_sendable(blocks.draft_blocks(card))
    assert dumped["blocks"][1]["text"]["text"].endswith("…")
    assert dumped["blocks"][2]["elements"][0]["text"] == "_Shortened here; Send sends the whole answer._"
    assert dumped["blocks"][-1]["elements"][0]["action_id"] == "tl_send_draft"


def test_500_sources_fit_one_context_line() -> None:
    card = _draft(sources=[(f"Article {i} " + "t" * 300, f"https://kb.test/{i}?" + "q" * 900) for i in range(500)])
    line = assert_sendable(blocks.draft_blocks(card))["blocks"][2]["elements"][0]["text"]
    assert re.search(r"\n… and 4\d\d more$", line)


def test_the_original_modal_escapes_and_marks_where_it_stops() -> None:
    view = blocks.original_modal(title="From <!channel> and a very long name indeed", text="&" * 200_000)
    dumped = assert_sendable(view)
    assert dumped["title"]["text"] == "From &lt;!channel&gt; a…"
    assert dumped["blocks"][0]["text"]["text"] == "&amp;" * 600
    assert "cut here" in dumped["blocks"][-1]["elements"][0]["text"]


def test_the_edit_modal_keeps_the_answer_unescaped_within_the_input_limit() -> None:
    view = blocks.edit_draft_modal(draft_id=str(uuid.uuid4()), text="a < b & " + "😀" * 3_000)
    value = assert_sendable(view)["blocks"][0]["element"]["initial_value"]
    assert value.startswith("a < b & 😀") and st.units(value) <= st.INPUT_VALUE


def test_astral_characters_are_counted_as_slack_counts_them() -> None:
    section = assert_sendable(blocks.card_blocks(_card(subject="😀" * 3_000)))["blocks"][0]["text"]["text"]
    assert st.units(section) <= st.SECTION_TEXT < len(section) * 2


# ---- any outside text at all ----

HOSTILE = hs.text(alphabet=hs.one_of(hs.sampled_from("<>&|*_`~!@#:\n "), hs.characters()), max_size=400)
LONG = hs.one_of(HOSTILE, hs.builds(lambda s, n: s * n, HOSTILE, hs.integers(1, 40)))


def _check_outside_text_is_inert(strings: list[str]) -> None:
    for s in strings:
        ours_removed = OUR_LINK.sub("", s)
        assert "<" not in ours_removed and ">" not in ours_removed, s[:200]
        assert not BAD_AMP.search(s), s[:200]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=LONG, customer=HOSTILE, assignee=hs.none() | HOSTILE, author=HOSTILE, body=LONG,
       names=hs.lists(HOSTILE, max_size=30), error=hs.none() | LONG, recipient=HOSTILE, draft=LONG,
       sources=hs.lists(hs.tuples(HOSTILE, hs.one_of(HOSTILE, HOSTILE.map(lambda s: "https://kb.test/" + s))),
                        max_size=20),
       decided_by=hs.none() | HOSTILE, state=hs.sampled_from(["pending", "sent", "no_answer", "stale"]))
def test_builders_never_raise_and_never_let_outside_text_format(
    subject: str, customer: str, assignee: str | None, author: str, body: str, names: list[str],
    error: str | None, recipient: str, draft: str, sources: list[tuple[str, str]], decided_by: str | None,
    state: str,
) -> None:
    card = _card(subject=subject, customer=customer, assignee=assignee)
    post = _post(author=author, body=body, names=names)
    notice = _notice(error=error, recipient=recipient)
    draft_card = _draft(text=draft, sources=sources, decided_by=decided_by, state=state)
    built = [
        assert_sendable(blocks.card_blocks(card)),
        assert_sendable(blocks.post_blocks(post, with_original=post.truncated)),
        assert_sendable(blocks.notice_blocks(notice)),
        assert_sendable(blocks.draft_blocks(draft_card)),
        assert_sendable(blocks.original_modal(title=author, text=body)),
        assert_sendable(blocks.reply_modal(ticket_id=str(uuid.uuid4()), number=7, recipient=recipient)),
    ]
    edit = blocks.edit_draft_modal(draft_id=str(uuid.uuid4()), text=draft)
    assert_sendable(edit)  # its input value is the agent's to edit and send: not escaped, only bounded
    fallbacks = [blocks.card_text(card), blocks.post_text(post), blocks.notice_text(notice),
                 blocks.draft_text(draft_card), blocks.failure_text(views.delivery_failure(error))]
    assert all(st.units(f) <= st.MESSAGE_TEXT for f in fallbacks)
    _check_outside_text_is_inert([t for dumped in built for t in _shown(dumped)] + fallbacks
                                 + [built[4]["title"]["text"]])


@settings(max_examples=300, deadline=None)
@given(text=LONG, limit=hs.integers(1, 3000))
def test_fit_stays_within_the_limit_and_unescapes_to_a_prefix(text: str, limit: int) -> None:
    fitted = st.fit(text, limit)
    assert st.units(fitted.text) <= limit
    shown = fitted.text.removesuffix("…") if fitted.cut else fitted.text
    plain = shown.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    assert text.startswith(plain) and fitted.cut == (plain != text)


# ---- end to end: a remote server's error in a real thread ----

def _failure_posts(world: SlackWorld) -> list[str]:
    return [str(c.args["text"]) for c in world.fake.calls_to("chat.postMessage")
            if "not delivered" in str(c.args.get("text", ""))]


def _outbound(world: SlackWorld) -> list[Message]:
    with system_scope(world.runtime.factory) as session:
        return list(session.execute(select(Message).where(Message.direction == Direction.OUTBOUND)).scalars())


def test_a_delivery_error_naming_channel_is_posted_to_the_thread_as_escaped_text(world: SlackWorld) -> None:
    deliver(world.runtime, mail(sender="bob@customer.test", message_id="<cust1@customer.test>"))
    drain_jobs(world.runtime)
    card_ts = world.card_ts()
    world.sink.refuse_next(1, code=550, text="5.1.1 <!channel> mailbox gone, see <http://evil.test|here>",
                           stage="rcpt")
    world.agent_says("Here is the fix.", thread_ts=card_ts, ts="1700000100.000042")
    wait_until(lambda: _outbound(world))
    drain_jobs(world.runtime)
    (failure,) = _failure_posts(world)
    assert failure == (":x: The reply was not delivered: the mail server refused the recipient bob@customer.test: "
                       "550 5.1.1 &lt;!channel&gt; mailbox gone, see &lt;http://evil.test|here&gt;")
    sent = [json.dumps(c.args) for c in world.fake.calls_to("chat.postMessage") + world.fake.calls_to("chat.update")]
    assert not any("<!channel>" in s for s in sent)
