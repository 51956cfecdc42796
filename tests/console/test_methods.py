"""A POST-only console address opened in a browser gets the console's own 405
page, leading to the page its button is on, and changes nothing."""

from __future__ import annotations

import pytest

from billing.models import Balance
from keys.models import ApiKey


def assert_console_405(response, back: str) -> None:
    page = response.content.decode()
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.templates[0].name == "405.html"
    assert 'id="method-not-allowed"' in page
    assert f'<a class="btn btn-primary" href="{back}">' in page


def test_opening_the_buy_address_shows_the_console_page_leading_to_billing(owner_client):
    response = owner_client.get("/billing/buy/")

    assert_console_405(response, "/billing/")
    assert '<a href="/billing/"' in response.content.decode()  # the nav, signed in


@pytest.mark.parametrize(
    ("url", "back"),
    [
        ("/billing/low-balance-alert", "/billing/"),
        ("/billing/redeem", "/billing/"),
        ("/keys/{id}/disable/", "/keys/{id}/"),
        ("/keys/{id}/enable/", "/keys/{id}/"),
        ("/keys/{id}/revoke-previous/", "/keys/{id}/"),
        ("/logout/", "/"),
    ],
)
def test_every_post_only_console_address_has_the_page(owner_client, owner_key, url, back):
    key, _ = owner_key

    response = owner_client.get(url.format(id=key.pk))

    assert_console_405(response, back.format(id=key.pk))


def test_opening_a_post_only_address_changes_nothing(owner_client, owner_key):
    key, _ = owner_key

    owner_client.get(f"/keys/{key.pk}/disable/")
    owner_client.get("/billing/low-balance-alert?amount=5")

    assert ApiKey.objects.get(pk=key.pk).is_active
    assert not Balance.objects.filter(low_balance_alert_usd__isnull=False).exists()
    assert "_auth_user_id" in owner_client.session


def test_a_signed_out_visitor_opening_log_out_gets_the_page_too(anonymous_client):
    assert_console_405(anonymous_client.get("/logout/"), "/")


def test_the_stripe_webhook_keeps_its_plain_405(anonymous_client):
    response = anonymous_client.get("/billing/stripe/webhook")

    assert response.status_code == 405 and response.content == b""
