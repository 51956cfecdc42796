"""A key's IP allowlist in the console: typed in the key form, shown on the key's page."""

from __future__ import annotations

import asyncio

import pytest

from gateway import auth
from gateway.errors import IpNotAllowed
from keys.models import ApiKey
from tests.web import post


def test_creating_a_key_takes_addresses_and_ranges_one_a_line_or_comma_separated(owner_client):
    post(
        owner_client,
        "/keys/new/",
        {"name": "office", "allowed_ips": "203.0.113.7\r\n10.0.0.0/8, 2001:DB8::/32\r\n\r\n::1"},
    )

    key = ApiKey.objects.get()
    assert key.allowed_ips == ["203.0.113.7/32", "10.0.0.0/8", "2001:db8::/32", "::1/128"]


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("203.0.113.300", "“203.0.113.300” is not an IP address or CIDR range"),
        ("office-vpn", "“office-vpn” is not an IP address or CIDR range"),
        ("10.0.0.0/33", "“10.0.0.0/33” is not an IP address or CIDR range"),
        ("10.1.2.3/8", "the range is 10.0.0.0/8. Write 10.0.0.0/8, or 10.1.2.3 alone"),
        ("2001:db8::1/32", "the range is 2001:db8::/32"),
    ],
)
def test_a_bad_entry_is_an_inline_error_and_nothing_is_created(owner_client, typed, error):
    response = post(owner_client, "/keys/new/", {"name": "x", "allowed_ips": f"127.0.0.1\n{typed}"})

    assert response.status_code == 200
    assert error in response.content.decode()
    assert not ApiKey.objects.exists()


def test_every_bad_entry_is_named(owner_client):
    response = post(owner_client, "/keys/new/", {"name": "x", "allowed_ips": "nope, 1.2.3, ::1"})

    page = response.content.decode()
    assert "“nope” is not" in page and "“1.2.3” is not" in page
    assert "“::1” is not" not in page


def test_more_than_a_hundred_entries_are_refused(owner_client):
    typed = "\n".join(f"10.0.{i // 256}.{i % 256}" for i in range(101))

    response = post(owner_client, "/keys/new/", {"name": "x", "allowed_ips": typed})

    assert "At most 100 addresses or ranges" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_the_edit_form_shows_the_allowlist_one_a_line_and_saves_it_back_unchanged(
    owner_client, make_key
):
    key, _ = make_key(name="x", allowed_ips=["10.0.0.0/8", "2001:db8::/32"])

    page = owner_client.get(f"/keys/{key.pk}/edit/").content.decode()
    assert "10.0.0.0/8\n2001:db8::/32</textarea>" in page

    post(
        owner_client,
        f"/keys/{key.pk}/edit/",
        {"name": "x", "allowed_ips": "10.0.0.0/8\n2001:db8::/32"},
    )
    key.refresh_from_db()
    assert key.allowed_ips == ["10.0.0.0/8", "2001:db8::/32"]


def test_an_edited_allowlist_reaches_the_gateway_at_once_and_an_empty_one_removes_it(
    owner_client, make_key
):
    key, secret = make_key(name="x")

    def authenticate(address: str) -> auth.KeyInfo:
        return asyncio.run(auth.authenticate(f"Bearer {secret}", address))

    assert authenticate("198.51.100.1").allowed_networks is None  # cached now

    post(owner_client, f"/keys/{key.pk}/edit/", {"name": "x", "allowed_ips": "203.0.113.0/24"})
    assert authenticate("203.0.113.99").id == key.pk
    with pytest.raises(IpNotAllowed):
        authenticate("198.51.100.1")

    post(owner_client, f"/keys/{key.pk}/edit/", {"name": "x", "allowed_ips": ""})
    key.refresh_from_db()
    assert key.allowed_ips == []
    assert authenticate("198.51.100.1").id == key.pk


def test_the_key_page_shows_its_allowlist(owner_client, make_key):
    limited, _ = make_key(name="office", allowed_ips=["203.0.113.7/32", "2001:db8::/32"])
    open_key, _ = make_key(name="anywhere")

    page = owner_client.get(f"/keys/{limited.pk}/").content.decode()
    assert "203.0.113.7/32" in page and "2001:db8::/32" in page

    assert "Any address" in owner_client.get(f"/keys/{open_key.pk}/").content.decode()


def test_an_outsider_cannot_change_someone_elses_allowlist(outsider_client, make_key):
    key, _ = make_key(name="x", allowed_ips=["10.0.0.0/8"])

    response = post(outsider_client, f"/keys/{key.pk}/edit/", {"name": "x", "allowed_ips": ""})

    assert response.status_code == 404
    key.refresh_from_db()
    assert key.allowed_ips == ["10.0.0.0/8"]
