"""The API-key admin takes budgets to the micro-dollar, as the console does,
and saves a key's own values back unchanged."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from keys.models import ApiKey
from tests.web import browser_like_client, form_data

SETTINGS = (
    "name",
    "is_active",
    "expires_at",
    "allowed_models",
    "rpm_limit",
    "tpm_limit",
    "quota_usd",
    "daily_budget_usd",
    "monthly_budget_usd",
    "notification_email",
    "allowed_ips",
)


@pytest.fixture
def admin_client(transactional_db):
    from accounts.models import User

    return browser_like_client(User.objects.create_superuser("admin@example.com", "pw-admin-1234"))


def _settings(key: ApiKey) -> dict:
    return ApiKey.objects.values(*SETTINGS).get(pk=key.pk)


def test_a_keys_change_page_saved_unchanged_keeps_every_setting(admin_client, make_key):
    key, _ = make_key(
        name="ci",
        expires_at=(timezone.now() + timedelta(days=30)).replace(microsecond=0),
        allowed_models=["a-model", "b-model"],
        rpm_limit=60,
        tpm_limit=90000,
        quota_usd="99999999.999999",
        daily_budget_usd="0.000125",
        monthly_budget_usd="1.50",
        notification_email="alerts@example.com",
        allowed_ips=["203.0.113.7", "2001:db8::/32"],
    )
    before = _settings(key)
    url = f"/admin/keys/apikey/{key.pk}/change/"
    page = admin_client.get(url).content.decode()

    response = admin_client.post(url, form_data(page, id="apikey_form"))

    assert response.status_code == 302
    assert _settings(key) == before
    for value in ("0.000125", "1.5", "99999999.999999"):
        assert f'value="{value}"' in page


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("0.000125", None),
        ("0.0000001", "Ensure that there are no more than 6 decimal places."),
        ("100000000", "Ensure that there are no more than 8 digits before the decimal point."),
    ],
)
def test_a_key_added_in_the_admin_takes_budgets_to_the_micro_dollar(
    admin_client, account, amount, error
):
    data = form_data(admin_client.get("/admin/keys/apikey/add/").content.decode(), id="apikey_form")
    data.update(account=[str(account.pk)], name=["admin-made"], daily_budget_usd=[amount])

    response = admin_client.post("/admin/keys/apikey/add/", data)

    if error is None:
        assert response.status_code == 302
        assert ApiKey.objects.get().daily_budget_usd == Decimal(amount)
    else:
        assert error in response.content.decode()
        assert not ApiKey.objects.exists()


def test_a_key_added_in_the_admin_with_a_line_break_in_its_name_is_refused(admin_client, account):
    data = form_data(admin_client.get("/admin/keys/apikey/add/").content.decode(), id="apikey_form")
    data.update(account=[str(account.pk)], name=["x\r\nBcc: a@evil.example"])

    response = admin_client.post("/admin/keys/apikey/add/", data)

    assert response.status_code == 200
    assert "A key name cannot contain control characters" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_a_key_added_in_the_admin_takes_an_allowlist_as_the_console_does(admin_client, account):
    data = form_data(admin_client.get("/admin/keys/apikey/add/").content.decode(), id="apikey_form")
    data.update(account=[str(account.pk)], name=["office"], allowed_ips=["203.0.113.7, 10.0.0.0/8"])

    response = admin_client.post("/admin/keys/apikey/add/", data)

    assert response.status_code == 302
    assert ApiKey.objects.get().allowed_ips == ["203.0.113.7/32", "10.0.0.0/8"]


def test_a_bad_allowlist_entry_in_the_admin_is_an_error(admin_client, make_key):
    key, _ = make_key(name="office")
    url = f"/admin/keys/apikey/{key.pk}/change/"
    data = form_data(admin_client.get(url).content.decode(), id="apikey_form")
    data.update(allowed_ips=["10.1.2.3/8"])

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "the range is 10.0.0.0/8" in response.content.decode()
    key.refresh_from_db()
    assert key.allowed_ips == []
