"""A key's IP allowlist: addresses and CIDR ranges, IPv4 and IPv6.

Stored as normalised network strings ("203.0.113.7/32", "2001:db8::/32"), a
bare address being a network of one; an empty list lets a key be used from
anywhere. The console form, the admin, createapikey and the services all read
entries through `networks_parse`, so one rule decides what is valid; the
gateway turns the stored strings into network objects once per cached key
(`networks_of`) and checks a client with `address_allowed`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_NETWORKS = 100
_SEPARATORS = re.compile(r"[\s,]+")


def networks_split(text: str) -> list[str]:
    """Entries as typed: one a line, or separated by commas or spaces."""
    return [entry for entry in _SEPARATORS.split(text) if entry]


def _network(entry: str) -> Network:
    try:
        return ipaddress.ip_network(entry)
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValidationError(
            f"“{entry}” is not an IP address or CIDR range (e.g. 203.0.113.7, "
            "10.0.0.0/8 or 2001:db8::/32).",
            code="invalid_network",
        ) from None
    raise ValidationError(
        f"“{entry}” has bits set past its prefix length: the range is {loose}. "
        f"Write {loose}, or {entry.split('/')[0]} alone for that one address.",
        code="host_bits",
    )


def networks_parse(entries: Iterable[str]) -> list[str]:
    """The entries normalised, in their order, each once; a ValidationError
    naming every bad entry."""
    parsed: list[str] = []
    errors: list[ValidationError] = []
    for entry in entries:
        try:
            network = str(_network(entry.strip()))
        except ValidationError as error:
            errors.append(error)
            continue
        if network not in parsed:
            parsed.append(network)
    if errors:
        raise ValidationError(errors)
    if len(parsed) > MAX_NETWORKS:
        raise ValidationError(
            f"At most {MAX_NETWORKS} addresses or ranges; use wider ranges to cover more.",
            code="too_many",
        )
    return parsed


def networks_of(stored: list[str]) -> tuple[Network, ...] | None:
    """The stored allowlist as networks; None when the key may be used from anywhere."""
    if not stored:
        return None
    return tuple(ipaddress.ip_network(entry) for entry in stored)


def address_allowed(address: str, networks: tuple[Network, ...]) -> bool:
    """Whether `address` (as the gateway found it, maybe malformed or empty)
    is in one of `networks`. An IPv4 client seen through an IPv6 socket
    (::ffff:203.0.113.7) is checked as the IPv4 address it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
