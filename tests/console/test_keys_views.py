"""The API-key workspace, as its owner uses it."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from gateway import auth
from gateway.errors import InvalidApiKey
from keys.models import ApiKey
from tests.web import post

SECRET = re.compile(rb"sk-pb-[A-Za-z0-9]{48}")


def authenticate(secret: str) -> auth.KeyInfo:
    return asyncio.run(auth.authenticate(f"Bearer {secret}", "127.0.0.1"))


@pytest.fixture
def models(make_model):
    make_model("gpt-test")
    make_model("codex-test")
    retired = make_model("retired-model")
    retired.enabled = False
    retired.save()


def test_key_list_shows_settings_at_a_glance_but_never_a_secret(owner_client, owner_key):
    key, secret = owner_key

    page = owner_client.get("/keys/").content

    assert b"ci-runner" in page
    assert key.display_prefix.encode() in page
    assert b"60 RPM" in page
    assert b"$5.00/day" in page
    assert secret.encode() not in page
    assert not SECRET.search(page)


def test_an_account_without_keys_sees_how_to_create_one(owner_client):
    page = owner_client.get("/keys/").content.decode()

    assert "No API keys yet" in page
    assert 'href="/keys/new/"' in page


def test_create_form_offers_only_enabled_models(owner_client, models):
    page = owner_client.get("/keys/new/").content.decode()

    assert 'value="gpt-test"' in page
    assert 'value="codex-test"' in page
    assert "retired-model" not in page


def test_creating_a_key_shows_its_secret_once(owner_client, owner, models):
    response = post(
        owner_client,
        "/keys/new/",
        {
            "name": "laptop",
            "allowed_models": ["gpt-test"],
            "rpm_limit": "30",
            "tpm_limit": "40000",
            "quota_usd": "100",
            "daily_budget_usd": "2.50",
            "monthly_budget_usd": "40",
            "notification_email": "alerts@example.com",
        },
    )

    [secret] = {m.decode() for m in SECRET.findall(response.content)}
    assert b"You will not see this again" in response.content
    assert "no-store" in response["Cache-Control"]
    key = ApiKey.objects.get(account=owner.account)
    assert (key.name, key.allowed_models, key.rpm_limit, key.tpm_limit) == (
        "laptop",
        ["gpt-test"],
        30,
        40000,
    )
    assert (key.quota_usd, key.daily_budget_usd, key.monthly_budget_usd) == (
        Decimal("100"),
        Decimal("2.50"),
        Decimal("40"),
    )
    assert key.notification_email == "alerts@example.com"
    assert authenticate(secret).id == key.pk
    for later in ("/keys/", f"/keys/{key.pk}/", f"/keys/{key.pk}/edit/", "/"):
        assert secret.encode() not in owner_client.get(later).content


def test_creating_a_key_with_htmx_swaps_in_the_secret_panel(owner_client):
    response = post(owner_client, "/keys/new/", {"name": "agent"}, htmx=True)

    assert response.status_code == 200
    assert SECRET.search(response.content)
    assert b"<html" not in response.content
    assert b'id="key-create"' in response.content


def test_invalid_settings_are_shown_inline_and_nothing_is_created(owner_client):
    response = post(
        owner_client,
        "/keys/new/",
        {
            "name": "",
            "rpm_limit": "0",
            "daily_budget_usd": "50",
            "monthly_budget_usd": "10",
            "expires_at": "2001-01-01T00:00",
            "notification_email": "not-an-email",
        },
        htmx=True,
    )

    page = response.content.decode()
    assert response.status_code == 200
    assert "This field is required." in page
    assert "Ensure this value is greater than or equal to 1." in page
    assert "The daily budget is above the monthly budget." in page
    assert "Choose a time in the future." in page
    assert "Enter a valid email address." in page
    assert not SECRET.search(response.content)
    assert not ApiKey.objects.exists()


def test_budgets_are_taken_to_the_micro_dollar(owner_client):
    post(
        owner_client,
        "/keys/new/",
        {
            "name": "tiny",
            "daily_budget_usd": "0.000125",
            "monthly_budget_usd": "12.345678",
            "quota_usd": "99999999.999999",
        },
    )

    key = ApiKey.objects.get()
    assert (key.daily_budget_usd, key.monthly_budget_usd, key.quota_usd) == (
        Decimal("0.000125"),
        Decimal("12.345678"),
        Decimal("99999999.999999"),
    )


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("0.0000001", "Ensure that there are no more than 6 decimal places."),
        ("100000000", "Ensure that there are no more than 8 digits before the decimal point."),
    ],
)
def test_a_budget_the_key_cannot_keep_exactly_is_an_inline_error(owner_client, amount, error):
    response = post(owner_client, "/keys/new/", {"name": "x", "quota_usd": amount}, htmx=True)

    assert error in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("name", ["x\r\nBcc: a@evil.example", "tab\there", "bell\x07", "n\x85el"])
def test_a_name_with_control_characters_is_an_inline_error(owner_client, name):
    response = post(owner_client, "/keys/new/", {"name": name}, htmx=True)

    assert "A key name cannot contain control characters" in response.content.decode()
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize("field", ["rpm_limit", "tpm_limit"])
def test_a_rate_limit_too_large_to_store_is_an_inline_error(owner_client, field):
    response = post(owner_client, "/keys/new/", {"name": "x", field: "3000000000"}, htmx=True)

    assert "Ensure this value is less than or equal to 2147483647." in response.content.decode()
    assert not ApiKey.objects.exists()


def test_edit_page_shows_budgets_as_typed_not_as_stored(owner_client, make_key):
    key, _ = make_key(daily_budget_usd="1.50", monthly_budget_usd="100", quota_usd="0.000125")

    page = owner_client.get(f"/keys/{key.pk}/edit/").content.decode()

    for value in ("1.5", "100", "0.000125"):
        assert f'value="{value}"' in page
    assert "1.500000" not in page and "E+" not in page


def test_new_key_form_leaves_the_notification_email_empty_and_names_the_default(
    owner_client, owner
):
    owner.account.notification_email = "team@example.com"
    owner.account.save()

    page = owner_client.get("/keys/new/").content.decode()

    field = re.search(r'<input[^>]*name="notification_email"[^>]*>', page).group(0)
    assert "value=" not in field
    assert "Empty: your profile&#x27;s default, now team@example.com." in page


def test_without_a_profile_email_the_default_named_is_the_owners(owner_client, owner):
    page = owner_client.get("/keys/new/").content.decode()

    assert f"Empty: your profile&#x27;s default, now {owner.email}." in page


def test_a_key_created_without_an_email_alerts_the_profiles_default_as_it_is_then(
    owner_client, owner, mailoutbox
):
    from usage.models import UsageRecord
    from usage.services import budget_alerts_send

    post(owner_client, "/keys/new/", {"name": "laptop", "daily_budget_usd": "1"})
    key = ApiKey.objects.get()
    owner.account.notification_email = "team@example.com"
    owner.account.save()
    UsageRecord.objects.create(
        created_at=timezone.now(),
        request_id="pb-alert-default",
        endpoint="chat.completions",
        status=200,
        account=owner.account,
        api_key=key,
        model="m",
        cost_usd=Decimal("0.85"),
    )

    assert budget_alerts_send(key_id=key.id) == 1

    assert key.notification_email == ""
    assert [m.to for m in mailoutbox] == [["team@example.com"]]


def test_expiry_is_read_in_the_accounts_time_zone(owner_client, owner):
    owner.account.timezone = "Asia/Tokyo"
    owner.account.save()
    local = (timezone.now() + timedelta(days=3)).astimezone(timezone.get_fixed_timezone(9 * 60))

    post(owner_client, "/keys/new/", {"name": "x", "expires_at": local.strftime("%Y-%m-%dT%H:%M")})

    key = ApiKey.objects.get()
    assert key.expires_at == local.replace(second=0, microsecond=0)


def test_a_new_expiry_replaces_one_with_seconds_and_an_empty_one_removes_it(owner_client, make_key):
    end_of_day = datetime.combine(timezone.now().date() + timedelta(days=9), time.max, UTC)
    key, _ = make_key(name="x", expires_at=end_of_day)
    noon = end_of_day.replace(hour=12, minute=0, second=0, microsecond=0)

    post(
        owner_client, f"/keys/{key.pk}/edit/", {"name": "x", "expires_at": f"{noon:%Y-%m-%dT%H:%M}"}
    )
    key.refresh_from_db()
    assert key.expires_at == noon

    post(owner_client, f"/keys/{key.pk}/edit/", {"name": "x", "expires_at": ""})
    key.refresh_from_db()
    assert key.expires_at is None


def test_key_page_shows_settings_spend_and_recent_requests(owner_client, owner_key, owner):
    from usage.models import UsageRecord

    key, _ = owner_key
    UsageRecord.objects.create(
        created_at=timezone.now(),
        account=owner.account,
        api_key=key,
        endpoint="chat.completions",
        model="gpt-test",
        prompt_tokens=1200,
        completion_tokens=34,
        cost_usd=Decimal("0.0123"),
        status=200,
        latency_ms=812,
        request_id="pb-req-1",
        upstream_request_id="req_up_1",
        client_request_id="my-trace-1",
    )

    page = owner_client.get(f"/keys/{key.pk}/").content.decode()

    for expected in ("gpt-test", "1,200 / 34", "$0.0123", "812 ms", "pb-req-1", "req_up_1"):
        assert expected in page
    assert "my-trace-1" in page
    assert "of $5.00 daily budget" in page


def test_editing_a_key_reaches_the_gateway_at_once(owner_client, owner_key, models):
    key, secret = owner_key
    assert authenticate(secret).rpm_limit == 60  # cached now

    response = post(
        owner_client,
        f"/keys/{key.pk}/edit/",
        {"name": "ci-runner", "rpm_limit": "5", "allowed_models": ["codex-test"]},
    )

    assert response.status_code == 302
    info = authenticate(secret)
    assert info.rpm_limit == 5
    assert info.allowed_models == frozenset({"codex-test"})


def test_edit_form_keeps_a_disabled_model_that_the_key_allows(owner_client, make_key, models):
    key, _ = make_key(allowed_models=["retired-model"])

    page = owner_client.get(f"/keys/{key.pk}/edit/").content.decode()

    assert 'value="retired-model"' in page


def test_disabling_a_key_refuses_it_at_once_and_enabling_restores_it(owner_client, owner_key):
    key, secret = owner_key
    authenticate(secret)

    response = post(owner_client, f"/keys/{key.pk}/disable/", htmx=True)

    assert b"Disabled" in response.content and b"Enable" in response.content
    with pytest.raises(InvalidApiKey, match="disabled"):
        authenticate(secret)
    post(owner_client, f"/keys/{key.pk}/enable/", htmx=True)
    assert authenticate(secret).id == key.pk


def test_disable_without_htmx_redirects_to_the_key_page(owner_client, owner_key):
    key, _ = owner_key

    response = post(owner_client, f"/keys/{key.pk}/disable/")

    assert response.status_code == 302
    assert response["Location"] == f"/keys/{key.pk}/"


def test_rotating_with_a_grace_period_shows_the_new_secret_once(owner_client, owner_key):
    key, old = owner_key

    response = post(owner_client, f"/keys/{key.pk}/rotate/", {"grace": "86400"})

    [new] = {m.decode() for m in SECRET.findall(response.content)}
    assert new != old
    assert "no-store" in response["Cache-Control"]
    assert authenticate(old).id == authenticate(new).id == key.pk
    page = owner_client.get(f"/keys/{key.pk}/").content
    assert b"still works until" in page
    assert new.encode() not in page


def test_revoking_the_previous_secret_from_the_key_page(owner_client, owner_key):
    key, old = owner_key
    post(owner_client, f"/keys/{key.pk}/rotate/", {"grace": "3600"})

    response = post(owner_client, f"/keys/{key.pk}/revoke-previous/")

    assert response.status_code == 302
    with pytest.raises(InvalidApiKey):
        authenticate(old)


def test_an_unknown_grace_period_is_an_inline_error(owner_client, owner_key):
    key, old = owner_key

    response = post(owner_client, f"/keys/{key.pk}/rotate/", {"grace": "99"})

    assert b"Select a valid choice" in response.content
    assert authenticate(old).id == key.pk


def test_deleting_asks_first_then_refuses_the_key(owner_client, owner_key):
    key, secret = owner_key
    authenticate(secret)

    confirm = owner_client.get(f"/keys/{key.pk}/delete/")
    response = post(owner_client, f"/keys/{key.pk}/delete/")

    assert b"cannot be undone" in confirm.content
    assert ApiKey.objects.filter(pk=key.pk).exists() is False
    assert response["Location"] == "/keys/"
    with pytest.raises(InvalidApiKey):
        authenticate(secret)
