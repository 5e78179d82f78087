"""Fixtures for inbound tests."""

from tests.support.smtp_sink import smtp_sink  # noqa: F401 (a fixture, found by name)
