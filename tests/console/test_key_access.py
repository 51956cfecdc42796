"""Every key view: the owner can, an outsider gets 404, a signed-out visitor
is sent to log in, and no POST is accepted without the CSRF token."""

from __future__ import annotations

import pytest
from django.urls import reverse

from keys.models import ApiKey
from tests.web import post

KEY_VIEWS = [
    ("get", "keys:detail"),
    ("get", "keys:edit"),
    ("post", "keys:edit"),
    ("post", "keys:disable"),
    ("post", "keys:enable"),
    ("get", "keys:rotate"),
    ("post", "keys:rotate"),
    ("post", "keys:revoke_previous"),
    ("get", "keys:delete"),
    ("post", "keys:delete"),
]
POST_VIEWS = [name for method, name in KEY_VIEWS if method == "post"]
EDIT = {"name": "renamed", "rpm_limit": "10"}


def _request(client, method: str, url: str, data: dict | None = None):
    return client.get(url) if method == "get" else post(client, url, data)


@pytest.mark.parametrize(("method", "name"), KEY_VIEWS)
def test_owner_can_use_every_key_view(owner_client, owner_key, method, name):
    key, _ = owner_key
    data = EDIT if name == "keys:edit" else {"grace": "0"}

    response = _request(owner_client, method, reverse(name, args=[key.pk]), data)

    assert response.status_code in (200, 302), response.content[:500]


@pytest.mark.parametrize(("method", "name"), KEY_VIEWS)
def test_outsider_gets_404_for_someone_elses_key(outsider_client, owner_key, method, name):
    key, _ = owner_key
    before = ApiKey.objects.values().get(pk=key.pk)

    response = _request(outsider_client, method, reverse(name, args=[key.pk]), EDIT)

    assert response.status_code == 404
    assert ApiKey.objects.values().get(pk=key.pk) == before


@pytest.mark.parametrize(("method", "name"), KEY_VIEWS)
def test_signed_out_visitor_is_sent_to_log_in(anonymous_client, owner_key, method, name):
    key, _ = owner_key
    url = reverse(name, args=[key.pk])

    response = _request(anonymous_client, method, url, EDIT)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={url}"


@pytest.mark.parametrize("url", ["/keys/", "/keys/new/", "/"])
def test_signed_out_visitor_is_sent_to_log_in_from_workspace_pages(anonymous_client, url):
    response = anonymous_client.get(url)

    if url == "/":
        assert response.status_code == 200  # the public landing page
        assert b"Create an account" in response.content
    else:
        assert response.status_code == 302
        assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("name", POST_VIEWS)
def test_post_without_csrf_token_is_refused(owner_client, owner_key, name):
    key, _ = owner_key
    before = ApiKey.objects.values().get(pk=key.pk)

    response = owner_client.post(reverse(name, args=[key.pk]), EDIT, headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert ApiKey.objects.values().get(pk=key.pk) == before


def test_creating_a_key_without_csrf_token_is_refused(owner_client):
    response = owner_client.post("/keys/new/", {"name": "x"}, headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert not ApiKey.objects.exists()


def test_htmx_post_with_the_token_in_the_header_is_accepted(owner_client, owner_key):
    key, _ = owner_key

    response = post(owner_client, reverse("keys:disable", args=[key.pk]), htmx=True)

    assert response.status_code == 200
    key.refresh_from_db()
    assert not key.is_active


def test_key_list_shows_only_the_accounts_own_keys(owner_client, owner_key, outsider, make_key):
    make_key(account=outsider.account, name="outsiders-secret-project")

    response = owner_client.get("/keys/")

    assert b"ci-runner" in response.content
    assert b"outsiders-secret-project" not in response.content
