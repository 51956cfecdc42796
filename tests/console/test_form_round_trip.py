"""Every console form takes back the values it shows: an edit page saved as a
browser would post it, with nothing changed, succeeds and changes nothing; the
new-key and rotate pages take their own defaults."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Account
from keys.models import ApiKey
from tests.web import form_data


@pytest.fixture
def models(make_model):
    make_model("gpt-test")
    make_model("codex-test")
    retired = make_model("retired-model")
    retired.enabled = False
    retired.save()


def _in_days(days: int) -> datetime:
    return (timezone.now() + timedelta(days=days)).replace(second=0, microsecond=0)


KEYS = {
    "budgets in cents": {
        "daily_budget_usd": "1.50",
        "monthly_budget_usd": "40",
        "quota_usd": "100.25",
    },
    "budgets to the micro-dollar": {
        "daily_budget_usd": "0.000125",
        "monthly_budget_usd": "0.5",
        "quota_usd": "99999999.999999",
    },
    "zero budgets": {"daily_budget_usd": "0", "monthly_budget_usd": "0", "quota_usd": "0"},
    "every setting": {
        "rpm_limit": 60,
        "tpm_limit": 90000,
        "daily_budget_usd": "2.75",
        "monthly_budget_usd": "80",
        "quota_usd": "1000",
        "allowed_models": ["codex-test", "retired-model"],
        "notification_email": "alerts@example.com",
        "expires_at": _in_days(30),
    },
    "no limits at all": {},
    # createapikey --expires 2099-12-31 means the last microsecond of that day.
    "an expiry with seconds": {"expires_at": datetime.combine(_in_days(9), time.max, UTC)},
    "an expiry already past": {"expires_at": _in_days(-1)},
}


def _key_row(key: ApiKey) -> dict:
    return ApiKey.objects.values().get(pk=key.pk)


def _errors(response) -> list[str]:
    return re.findall(r'<p class="error">(.*?)</p>', response.content.decode())


def _save_unchanged(client, url: str):
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, form_data(page.content.decode(), action=url))


@pytest.mark.parametrize("settings_", KEYS.values(), ids=KEYS.keys())
@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo", "America/St_Johns"])
def test_key_edit_page_saved_unchanged_changes_nothing(
    owner_client, owner, make_key, models, settings_, zone
):
    Account.objects.filter(pk=owner.account_id).update(timezone=zone)
    key, _ = make_key(name="ci-runner", **settings_)
    before = _key_row(key)

    response = _save_unchanged(owner_client, f"/keys/{key.pk}/edit/")

    assert response.status_code == 302, _errors(response)
    assert response["Location"] == f"/keys/{key.pk}/"
    assert _key_row(key) == before


def test_key_expiring_in_an_hour_a_clock_change_repeats_saves_unchanged(
    owner_client, owner, make_key
):
    # 2030-10-27: Berlin's clocks go back from 03:00 to 02:00 at 01:00 UTC, so
    # 00:30 and 01:30 UTC are both 02:30 there.
    Account.objects.filter(pk=owner.account_id).update(timezone="Europe/Berlin")
    key, _ = make_key(expires_at=datetime(2030, 10, 27, 1, 30, tzinfo=UTC))
    before = _key_row(key)

    response = _save_unchanged(owner_client, f"/keys/{key.pk}/edit/")

    assert response.status_code == 302, _errors(response)
    assert _key_row(key) == before


def test_a_key_made_by_createapikey_saves_unchanged(owner_client, owner, models):
    options = {
        "--name": " ci ",
        "--rpm": "60",
        "--tpm": "90000",
        "--quota": "0.000125",
        "--daily-budget": "1.50",
        "--monthly-budget": "40",
        "--models": "gpt-test,codex-test",
        "--expires": "2099-12-31",
        "--notify-email": "alerts@example.com",
    }
    args = [arg for option in options.items() for arg in option]
    call_command(
        "createapikey", "--email", owner.email, *args, stdout=StringIO(), stderr=StringIO()
    )
    key = ApiKey.objects.get()
    before = _key_row(key)

    response = _save_unchanged(owner_client, f"/keys/{key.pk}/edit/")

    assert response.status_code == 302, _errors(response)
    assert _key_row(key) == before


def test_profile_page_saved_unchanged_changes_nothing(owner_client, owner):
    Account.objects.filter(pk=owner.account_id).update(
        name="Acme Research GmbH",
        timezone="America/Argentina/Buenos_Aires",
        notification_email="ops@acme.test",
    )
    before = Account.objects.values().get(pk=owner.account_id)

    response = _save_unchanged(owner_client, "/account/")

    assert response.status_code == 302, _errors(response)
    assert Account.objects.values().get(pk=owner.account_id) == before


def test_new_key_page_posted_with_only_a_name_typed_creates_a_key_with_its_defaults(
    owner_client, owner, models
):
    Account.objects.filter(pk=owner.account_id).update(notification_email="team@example.com")
    data = form_data(owner_client.get("/keys/new/").content.decode(), action="/keys/new/")
    data["name"] = ["laptop"]

    response = owner_client.post("/keys/new/", data)

    assert "You will not see this again" in response.content.decode(), _errors(response)
    key = ApiKey.objects.get()
    assert (key.notification_email, key.allowed_models, key.expires_at) == ("", [], None)


def test_rotate_page_posted_as_shown_rotates_with_its_default_grace_period(owner_client, owner_key):
    key, old = owner_key
    url = f"/keys/{key.pk}/rotate/"

    response = owner_client.post(url, form_data(owner_client.get(url).content.decode(), action=url))

    assert "You will not see this again" in response.content.decode(), _errors(response)
    key.refresh_from_db()
    assert key.previous_valid_until - timezone.now() > timedelta(minutes=59)
