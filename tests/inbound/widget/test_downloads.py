"""Download links for chat files: a forced download with nosniff, 403 once altered or expired."""

from __future__ import annotations

import time
import uuid

import pytest

from inbound.widget import downloads
from tests.inbound.widget.conftest import Visitor, WidgetWorld

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)
KEY = b"k" * 32


def _sent_file(v: Visitor, data: bytes = PNG, name: str = "screen shot é.png") -> dict[str, object]:
    v.start()
    up = v.http.post("/widget/v1/attachments", files={"file": (name, data, "image/png")}, headers=v.headers()).json()
    r = v.http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "attachments": [up["ref"]]},
                    headers=v.headers())
    assert r.status_code == 201, r.text
    (file,) = v.history().json()["messages"][0]["attachments"]
    return dict(file)


def test_a_sent_file_downloads_as_an_attachment_with_nosniff(widget: WidgetWorld) -> None:
    file = _sent_file(widget.visitor())
    r = widget.http.get(str(file["url"]))  # no token, no Origin: the link alone
    assert (r.status_code, r.content, r.headers["x-content-type-options"]) == (200, PNG, "nosniff")
    assert r.headers["content-disposition"] == (
        "attachment; filename=\"screen shot _.png\"; filename*=UTF-8''screen%20shot%20%C3%A9.png")


def test_an_altered_link_is_a_403(widget: WidgetWorld) -> None:
    url = str(_sent_file(widget.visitor())["url"])
    body, mac = url.rsplit(".", 1)
    assert widget.http.get(f"{body[:-2]}AA.{mac}").status_code == 403


def test_an_expired_link_is_a_403(widget: WidgetWorld) -> None:
    url = str(_sent_file(widget.visitor())["url"])
    later = time.time() + downloads.LINK_TTL_SECONDS + 5
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(downloads.time, "time", lambda: later)
        r = widget.http.get(url)
    assert r.status_code == 403 and "expired" in r.json()["error"]


def test_an_upload_ref_does_not_pass_as_a_download_link(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    ref = v.http.post("/widget/v1/attachments", files={"file": ("a.png", PNG, "image/png")},
                      headers=v.headers()).json()["ref"]
    assert widget.http.get(f"/widget/v1/files/{ref}").status_code == 403


@pytest.mark.parametrize(("name", "expected"), [
    ("report.pdf", "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"),
    ('a"b;c.txt', "attachment; filename=\"a_b_c.txt\"; filename*=UTF-8''a%22b%3Bc.txt"),
    ("отчёт.pdf", "attachment; filename=\"_____.pdf\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.pdf"),
])
def test_the_disposition_always_forces_a_download(name: str, expected: str) -> None:
    assert downloads.content_disposition(name) == expected


def test_a_link_checks_out_until_it_expires() -> None:
    conversation = uuid.uuid4()
    link, expires = downloads.sign_link(KEY, sha256="ab" * 32, filename="x.png", content_type="image/png",
                                        conversation_id=conversation, now=1000)
    assert downloads.verify_link(KEY, link, now=expires).conversation_id == str(conversation)
    with pytest.raises(downloads.LinkError):
        downloads.verify_link(KEY, link, now=expires + 1)
