"""Where the gateway finds a client's address (gateway/http.py client_address)."""

from __future__ import annotations

import pytest

from gateway.http import client_address


def scope(peer: str | None, *forwarded: str) -> dict:
    return {
        "client": (peer, 40000) if peer else None,
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
    }


def test_without_trusted_hops_the_socket_peer_is_the_client_whatever_the_header_says():
    assert client_address(scope("192.0.2.1", "203.0.113.7"), 0) == "192.0.2.1"


@pytest.mark.parametrize(
    ("hops", "forwarded", "client"),
    [
        (1, ["203.0.113.7"], "203.0.113.7"),
        (1, ["198.51.100.9, 203.0.113.7"], "203.0.113.7"),
        (2, ["198.51.100.9, 203.0.113.7, 10.0.0.2"], "203.0.113.7"),
        (2, ["198.51.100.9, 203.0.113.7", "10.0.0.2"], "203.0.113.7"),  # two headers, one list
        (1, ["203.0.113.7:4711"], "203.0.113.7"),
        (1, ["[2001:db8::5]:4711"], "2001:db8::5"),
        (1, ["2001:DB8:0::5"], "2001:db8::5"),
    ],
)
def test_with_trusted_hops_the_client_is_that_many_entries_from_the_right(hops, forwarded, client):
    assert client_address(scope("192.0.2.1", *forwarded), hops) == client


@pytest.mark.parametrize(
    ("hops", "forwarded"),
    [(1, []), (2, ["203.0.113.7"]), (1, ["garbage"]), (1, [""]), (1, ["203.0.113.7, "])],
)
def test_a_missing_short_or_malformed_header_falls_back_to_the_socket_peer(hops, forwarded):
    assert client_address(scope("192.0.2.1", *forwarded), hops) == "192.0.2.1"


def test_no_socket_peer_is_no_address():
    assert client_address(scope(None), 0) == ""
