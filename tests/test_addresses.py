"""Who is asking: forwarded addresses are believed from trusted proxies only."""

from __future__ import annotations

import ipaddress

import pytest

from rasbot.addresses import client_address, is_trusted

PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        (
            "203.0.113.9",
            "198.51.100.1",
            "203.0.113.9",
        ),  # not a proxy: its word is not taken
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "192.0.2.7, 198.51.100.1, 10.1.1.1", "198.51.100.1"),
        ("::1", " 2001:db8::0001 ", "2001:db8::1"),  # written the usual way
        ("10.0.0.2", "10.2.2.2, 10.3.3.3", "10.2.2.2"),  # only proxies: the first
        ("10.0.0.2", "not-an-address", "10.0.0.2"),
        ("10.0.0.2", " , ", "10.0.0.2"),
    ],
)
def test_client_address(peer: str, forwarded: str | None, expected: str) -> None:
    for _ in range(2):  # answers are cached: the second time must agree
        assert client_address(peer, forwarded, PROXIES) == expected


def test_trust_depends_on_the_networks_asked_about() -> None:
    assert is_trusted("10.9.9.9", PROXIES)
    assert not is_trusted("10.9.9.9", (ipaddress.ip_network("192.0.2.0/24"),))
    assert not is_trusted("10.9.9.9", ())
    assert not is_trusted("garbage", PROXIES)
    assert not is_trusted(None, PROXIES)
