"""The allowlist's one parsing rule (keys/networks.py) and its check."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from keys.networks import address_allowed, networks_of, networks_parse, networks_split


def test_entries_are_normalised_deduplicated_and_kept_in_order():
    typed = networks_split("10.0.0.0/8,203.0.113.7\n 2001:0DB8:0::/32 , 203.0.113.7/32")

    assert networks_parse(typed) == ["10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32"]


def test_a_bare_address_is_a_network_of_one():
    assert networks_parse(["203.0.113.7", "::1"]) == ["203.0.113.7/32", "::1/128"]


def test_bad_entries_are_each_named():
    with pytest.raises(ValidationError) as raised:
        networks_parse(["nope", "10.0.0.0/8", "10.1.2.3/8"])

    assert [error.code for error in raised.value.error_list] == ["invalid_network", "host_bits"]


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("203.0.113.7", True),
        ("10.200.3.4", True),
        ("10.0.0.0", True),
        ("11.0.0.1", False),
        ("2001:db8::42", True),
        ("2001:db9::1", False),
        ("::ffff:203.0.113.7", True),  # an IPv4 client seen through an IPv6 socket
        ("", False),
        ("not-an-address", False),
    ],
)
def test_an_address_is_allowed_only_inside_a_network(address, allowed):
    networks = networks_of(["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32"])
    assert networks is not None

    assert address_allowed(address, networks) is allowed


def test_an_empty_allowlist_is_no_allowlist():
    assert networks_of([]) is None
