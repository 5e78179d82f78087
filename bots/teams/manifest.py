"""The Teams app package: manifest.json (with the RSC permission) and two generated PNG icons.

`ChannelMessage.Read.Group` (resource-specific consent) lets the bot receive every message of the
bound channel's threads; without it Teams delivers only messages that @mention the bot.
"""

from __future__ import annotations

import io
import json
import struct
import uuid
import zipfile
import zlib
from typing import Any

from core.errors import InvalidInput

MANIFEST_VERSION = "1.17"
ACCENT = (0x2B, 0x5C, 0xD6)
RSC_PERMISSION = "ChannelMessage.Read.Group"


def png(width: int, height: int, pixel: Any) -> bytes:
    """A minimal RGBA PNG; `pixel(x, y)` gives (r, g, b, a). No imaging library needed."""
    rows = b"".join(b"\x00" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def _in_mark(x: int, y: int, size: int) -> bool:
    """A speech bubble with a thread line: the same mark on both icons."""
    u, v = x / size, y / size
    bubble = 0.18 <= u <= 0.82 and 0.2 <= v <= 0.62
    tail = 0.3 <= u <= 0.42 and 0.62 <= v <= 0.78 and (v - 0.62) <= (0.42 - u) * 1.4
    return bubble or tail


def color_icon() -> bytes:
    """192×192, full colour (Teams' `color` icon)."""
    return png(192, 192, lambda x, y: (255, 255, 255, 255) if _in_mark(x, y, 192) else (*ACCENT, 255))


def outline_icon() -> bytes:
    """32×32, white on transparent (Teams' `outline` icon)."""
    return png(32, 32, lambda x, y: (255, 255, 255, 255) if _in_mark(x, y, 32) else (0, 0, 0, 0))


def manifest(*, bot_id: str, public_url: str, name: str = "Threadline", version: str = "1.0.0") -> dict[str, Any]:
    try:
        uuid.UUID(bot_id)
    except ValueError:
        raise InvalidInput(f"the bot id must be the Azure bot's app id (a GUID), not {bot_id!r}") from None
    site = public_url.rstrip("/")
    return {
        "$schema": f"https://developer.microsoft.com/en-us/json-schemas/teams/v{MANIFEST_VERSION}/MicrosoftTeams.schema.json",
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": bot_id,
        "developer": {"name": name, "websiteUrl": site, "privacyUrl": site, "termsOfUseUrl": site},
        "name": {"short": name, "full": f"{name} helpdesk"},
        "description": {
            "short": "Work helpdesk tickets from Teams channel threads.",
            "full": "Each ticket is a thread in your support channel: reply to answer the customer by mail "
                    "(with an undo window), write note: for internal notes, assign, prioritise and resolve "
                    "from the ticket card.",
        },
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": "#{:02X}{:02X}{:02X}".format(*ACCENT),
        "bots": [{"botId": bot_id, "scopes": ["team"], "supportsFiles": False, "isNotificationOnly": False}],
        "permissions": ["identity", "messageTeamMembers"],
        "validDomains": [],
        "webApplicationInfo": {"id": bot_id, "resource": "https://RscPermission"},
        "authorization": {"permissions": {"resourceSpecific": [{"name": RSC_PERMISSION, "type": "Application"}]}},
    }


def app_package(*, bot_id: str, public_url: str) -> bytes:
    """The zip Teams' "Upload a custom app" takes: manifest.json and its two icons at the root."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest(bot_id=bot_id, public_url=public_url), indent=2))
        zf.writestr("color.png", color_icon())
        zf.writestr("outline.png", outline_icon())
    return buffer.getvalue()
