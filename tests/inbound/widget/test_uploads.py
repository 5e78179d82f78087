"""Visitor uploads: bounded, typed from their bytes, content-addressed, and on the ticket like mail attachments."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from sqlalchemy import select

from core.blobs import BlobStore
from core.db.session import tenant_scope
from core.tickets.models import Attachment
from inbound.widget import uploads
from tests.inbound.widget.conftest import Visitor, WidgetWorld
from tests.support.jobs import drain_jobs

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


@pytest.mark.parametrize(("data", "kind"), [
    (PNG, "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(32), "image/jpeg"),
    (b"GIF89a" + bytes(16), "image/gif"),
    (b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(16), "image/webp"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    (b"order 1234\nthank you\n", "text/plain"),
    ("Grüße, <p>not markup at the start".encode(), "text/plain"),
    (bytes(range(256)), "application/octet-stream"),
])
def test_the_type_comes_from_the_bytes(data: bytes, kind: str) -> None:
    assert uploads.sniff(data) == kind


@pytest.mark.parametrize("data", [
    b"MZ\x90\x00\x03", b"\x7fELF\x02\x01\x01", b"\xcf\xfa\xed\xfe\x07", b"#!/bin/sh\nrm -rf ~\n",
    b"<!DOCTYPE html><html><script>alert(1)</script>", b"\xef\xbb\xbf  <html>", b"\n<svg onload=alert(1)>",
    b"<?xml version='1.0'?><svg/>", b"<script>alert(1)</script>", b"<IMG src=x onerror=alert(1)>",
])
def test_executables_and_markup_are_refused(data: bytes) -> None:
    with pytest.raises(uploads.UploadRefusedError):
        uploads.sniff(data)


def _upload(v: Visitor, data: bytes, *, name: str = "photo.png", claimed: str = "image/png") -> object:
    return v.http.post("/widget/v1/attachments", files={"file": (name, data, claimed)}, headers=v.headers())


def test_an_upload_sent_with_a_message_lands_on_the_ticket_and_in_the_transcript(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start(email="vera@visitor.test")
    r = _upload(v, PNG, name="../../etc/screen\u202eshot.png", claimed="text/html")
    assert r.status_code == 201, r.text
    up = r.json()
    assert (up["filename"], up["content_type"], up["size"]) == ("screenshot.png", "image/png", len(PNG))
    assert v.http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "text": "see this",
                                                    "attachments": [up["ref"]]}, headers=v.headers()).status_code == 201
    drain_jobs(widget.runtime)
    (shown,) = v.history().json()["messages"]
    (file,) = shown["attachments"]
    assert (file["filename"], file["content_type"], file["size"]) == ("screenshot.png", "image/png", len(PNG))
    with tenant_scope(widget.runtime.factory, _tenant(v)) as session:
        (att,) = session.execute(select(Attachment)).scalars()
        stored = (att.filename, att.content_type, att.size, att.sha256)
    assert stored == ("screenshot.png", "image/png", len(PNG), hashlib.sha256(PNG).hexdigest())
    assert BlobStore.from_settings(widget.runtime.settings).get(stored[3]) == PNG


def test_a_file_alone_is_a_message(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    ref = _upload(v, b"%PDF-1.4\n", name="invoice.pdf").json()["ref"]  # type: ignore[attr-defined]
    r = v.http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "attachments": [ref]},
                    headers=v.headers())
    assert r.status_code == 201


def test_a_file_over_the_limit_is_a_413_before_it_is_stored(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    r = _upload(v, PNG + bytes(uploads.UPLOAD_MAX_BYTES))
    assert r.status_code == 413 and "10 MiB" in r.json()["error"]  # type: ignore[attr-defined]
    assert not list(BlobStore.from_settings(widget.runtime.settings).root.glob("*/*/*"))


def test_html_labelled_as_an_image_is_refused(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    assert _upload(v, b"<html><script>alert(1)</script>", claimed="image/png").status_code == 415  # type: ignore[attr-defined]


def test_a_ref_from_another_conversation_is_refused(widget: WidgetWorld) -> None:
    owner, thief = widget.visitor(), widget.visitor()
    owner.start()
    thief.start()
    ref = _upload(owner, PNG).json()["ref"]  # type: ignore[attr-defined]
    r = thief.http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "attachments": [ref]},
                        headers=thief.headers())
    assert r.status_code == 400


def test_a_forged_ref_is_refused(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    forged = uploads.sign_ref(b"not our key", uploads.UploadRef(hashlib.sha256(PNG).hexdigest(), 1, "image/png",
                                                                "x.png", str(v.conversation_id), 2**40))
    r = v.http.post("/widget/v1/messages", json={"client_message_id": "client-0001", "attachments": [forged]},
                    headers=v.headers())
    assert r.status_code == 400


def test_uploads_are_rate_limited_per_visitor(widget: WidgetWorld) -> None:
    v = widget.visitor()
    v.start()
    codes = [_upload(v, PNG).status_code for _ in range(21)]  # type: ignore[attr-defined]
    assert 429 in codes


def test_an_upload_without_a_token_is_refused(widget: WidgetWorld) -> None:
    v = widget.visitor()
    assert _upload(v, PNG).status_code == 401  # type: ignore[attr-defined]


def _tenant(v: Visitor) -> uuid.UUID:
    from core.db.session import system_scope
    from core.tenancy.models import Inbox

    with system_scope(v.http.app.state.runtime.factory) as session:  # type: ignore[attr-defined]
        return session.get_one(Inbox, uuid.UUID(v.inbox_id)).tenant_id
