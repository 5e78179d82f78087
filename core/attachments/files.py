"""The files of a message: size limits for an agent's reply, and stored blobs attached to a message.

Bytes live in the content-addressed blob store (core/blobs.py); an `attachments` row names a blob
for one message. Attaching is idempotent per (message, blob, name), so a retried job that attached
the same files before changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import InvalidInput
from core.tickets.models import Attachment, Message


@dataclass(frozen=True)
class StoredFile:
    """A file whose bytes are in the blob store (put there before this is built)."""

    sha256: str
    filename: str
    content_type: str
    size: int
    inline: bool = False
    content_id: str | None = None


@dataclass(frozen=True)
class SharedFile:
    """A file an agent shared on a surface (Slack), known by the surface's id; fetched later by a job."""

    ref: str  # the surface's file id
    name: str
    size: int  # as the surface declared it (0: unknown until fetched)


class FileTooLarge(InvalidInput):
    """A file (or the files together) over the reply's limits: told to the agent, nothing sent."""


def size_text(size: int) -> str:
    for unit, step in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= step:
            return f"{size / step:.1f} {unit}"
    return f"{size} B"


def size_refusal(files: Sequence[tuple[str, int]], *, per_file: int, per_reply: int) -> str | None:
    """Why these (name, size) files cannot go with one reply, in the agent's words; None when they can."""
    for name, size in files:
        if size > per_file:
            return (f"the file \u201c{name[:120]}\u201d is {size_text(size)}; a reply can carry files of at most "
                    f"{size_text(per_file)} each, so the reply was not sent (share a link instead)")
    total = sum(size for _name, size in files)
    if total > per_reply:
        return (f"the files add up to {size_text(total)}; a reply can carry at most {size_text(per_reply)} "
                f"of files, so the reply was not sent (send fewer or smaller files)")
    return None


def attach(session: Session, *, message: Message, files: Sequence[StoredFile]) -> list[Attachment]:
    """Attachment rows naming each stored file for `message`; files it already has are skipped."""
    have = set(session.execute(
        select(Attachment.sha256, Attachment.filename)
        .where(Attachment.tenant_id == message.tenant_id, Attachment.message_id == message.id)
    ).tuples())
    rows: list[Attachment] = []
    for f in files:
        name = (f.filename or "attachment")[:500]
        if (f.sha256, name) in have:
            continue
        have.add((f.sha256, name))
        row = Attachment(tenant_id=message.tenant_id, message_id=message.id, filename=name,
                         content_type=f.content_type[:200], size=f.size, sha256=f.sha256,
                         content_id=f.content_id, inline=f.inline)
        session.add(row)
        rows.append(row)
    session.flush()
    return rows
