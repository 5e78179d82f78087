"""The Slack app manifest in the repo points at the endpoints we serve and asks for what we use."""

from __future__ import annotations

from pathlib import Path

import yaml

MANIFEST = Path(__file__).resolve().parents[3] / "bots" / "slack" / "manifest.yaml"


def test_manifest_urls_are_our_endpoints_and_scopes_cover_our_calls() -> None:
    m = yaml.safe_load(MANIFEST.read_text())
    urls = {m["settings"]["event_subscriptions"]["request_url"], m["settings"]["interactivity"]["request_url"],
            m["features"]["slash_commands"][0]["url"]}
    assert {u.split("example.com", 1)[1] for u in urls} == {"/slack/events", "/slack/interactions", "/slack/commands"}
    scopes = set(m["oauth_config"]["scopes"]["bot"])
    # chat.postMessage/update/postEphemeral, reactions.add, users.info (+email), message events, the command
    assert {"chat:write", "reactions:write", "users:read", "users:read.email", "channels:history", "commands"} <= scopes
