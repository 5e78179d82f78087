"""The bot's token goes only to allow-listed service URL hosts."""

from __future__ import annotations

import pytest

from bots.teams.connector import ServiceUrlRefusedError, check_service_url
from core.settings import Settings


@pytest.mark.parametrize("url", ["https://evil.example/teams/", "https://smba.trafficmanager.net.evil.example/",
                                 "http://smba.trafficmanager.net/teams/"])
def test_a_service_url_outside_the_allow_list_is_refused(url: str) -> None:
    with pytest.raises(ServiceUrlRefusedError):
        check_service_url(Settings(), url)


@pytest.mark.parametrize("url", ["https://smba.trafficmanager.net/emea/", "https://smba.trafficmanager.net/amer"])
def test_microsofts_service_urls_are_allowed(url: str) -> None:
    assert check_service_url(Settings(), url).endswith("/")


def test_the_configured_api_url_host_is_allowed_even_over_http() -> None:
    settings = Settings(TEAMS_API_URL="http://127.0.0.1:9999/")
    assert check_service_url(settings, "http://127.0.0.1:9999/") == "http://127.0.0.1:9999/"
