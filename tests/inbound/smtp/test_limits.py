"""ClientLimits and SlidingWindows: pure bookkeeping, driven with an explicit clock."""

from __future__ import annotations

import pytest

from inbound.smtp.limits import ClientLimits, Limit, LimitPolicy, SlidingWindows, in_networks, parse_networks

RELAY = "192.0.2.10"
STRANGER = "198.51.100.7"


def _limits(**overrides: int) -> ClientLimits:
    values = {"max_connections_per_ip": 2, "messages_per_minute": 3, **overrides}
    return ClientLimits(LimitPolicy(trusted_networks=parse_networks("192.0.2.0/24, 2001:db8::/32"), **values))


@pytest.mark.parametrize(("ip", "trusted"), [
    ("192.0.2.10", True),
    ("::ffff:192.0.2.10", True),  # an IPv4 peer on a dual-stack socket
    ("2001:db8::25", True),
    ("198.51.100.7", False),
    ("2001:db9::1", False),
    ("not-an-ip", False),  # a unix socket peer is never trusted by accident
])
def test_trusted_networks_match_by_cidr(ip: str, trusted: bool) -> None:
    """Membership is decided by ipaddress, for IPv4, IPv6 and IPv4-mapped peers."""
    assert in_networks(ip, parse_networks("192.0.2.0/24,2001:db8::/32")) is trusted


def test_an_empty_setting_trusts_nobody_and_a_typo_fails_fast() -> None:
    """'' means no relay is trusted; a malformed network refuses to start rather than trust wrongly."""
    assert parse_networks("") == ()
    with pytest.raises(ValueError):
        parse_networks("127.0.0.0/8,10.0.0/33")


def test_a_trusted_relay_is_exempt_from_every_per_client_limit() -> None:
    """Behind an MX all mail comes from one address; none of it may be deferred for that."""
    limits = _limits()
    assert [limits.open(RELAY) for _ in range(50)] == [None] * 50
    assert {limits.check_message(RELAY, messages_in_connection=n, now=0.0) for n in range(500)} == {None}
    for _ in range(20):
        limits.unknown_recipient(RELAY, now=0.0)
    assert limits.check_recipient(RELAY, recipients_in_message=500, now=0.0) is None
    assert limits.tracked_clients() == 0


def test_connections_are_capped_and_freed_on_close() -> None:
    """The third concurrent connection is refused until one closes."""
    limits = _limits()
    assert [limits.open(STRANGER) for _ in range(3)] == [None, None, Limit.CONNECTIONS]
    limits.close(STRANGER)
    assert limits.open(STRANGER) is None


def test_message_rate_is_a_sliding_window_that_expires() -> None:
    """Three messages a minute: the fourth waits until the first is a minute old."""
    limits = _limits()
    got = [limits.check_message(STRANGER, messages_in_connection=0, now=t) for t in (0.0, 10.0, 20.0, 30.0, 60.5)]
    assert got == [None, None, None, Limit.MESSAGE_RATE, None]


def test_messages_per_connection_are_capped() -> None:
    """A connection that has sent its quota must reconnect."""
    limits = _limits(messages_per_minute=1000, messages_per_connection=2)
    got = [limits.check_message(STRANGER, messages_in_connection=n, now=0.0) for n in range(3)]
    assert got == [None, None, Limit.MESSAGES_PER_CONNECTION]


def test_recipients_beyond_one_hundred_are_refused() -> None:
    """RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted, not one more here."""
    limits = _limits()
    assert limits.check_recipient(STRANGER, recipients_in_message=99, now=0.0) is None
    assert limits.check_recipient(STRANGER, recipients_in_message=100, now=0.0) is Limit.RECIPIENTS_PER_MESSAGE


def test_unknown_recipients_block_further_rcpts_until_the_window_passes() -> None:
    """After five 550s in ten minutes every RCPT is deferred, so valid and invalid look alike."""
    limits = _limits()
    for t in range(5):
        assert limits.check_recipient(STRANGER, recipients_in_message=0, now=float(t)) is None
        limits.unknown_recipient(STRANGER, now=float(t))
    assert limits.check_recipient(STRANGER, recipients_in_message=0, now=10.0) is Limit.UNKNOWN_RECIPIENTS
    assert limits.check_recipient(STRANGER, recipients_in_message=0, now=601.0) is None


def test_a_flood_from_many_addresses_keeps_memory_bounded() -> None:
    """Ten thousand distinct clients leave at most max_keys tracked, the most recent ones."""
    windows = SlidingWindows(window=60.0, max_keys=100)
    for i in range(10_000):
        windows.add(f"10.0.{i // 256}.{i % 256}", now=0.0)
    assert len(windows) == 100
    assert windows.count("10.0.39.15", now=0.0) == 1  # the last one added (i = 9999)
    assert windows.count("10.0.0.0", now=0.0) == 0


def test_expired_clients_are_forgotten_as_new_ones_arrive() -> None:
    """Once their window has passed, old clients no longer take up room."""
    windows = SlidingWindows(window=60.0, max_keys=100)
    for i in range(50):
        windows.add(f"10.0.0.{i}", now=0.0)
    windows.add("10.0.1.1", now=61.0)
    assert len(windows) == 1
