"""POST /billing/redeem: the signed-in account redeems a code; htmx gets the
outcome as a partial, a plain form post goes back to the billing page with
a message."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.messages import get_messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from billing.codes_forms import RedeemForm
from billing.models import Balance, Plan, Redemption
from tests.web import browser_like_client, csrf_token

URL = "/billing/redeem"


def post(client, code: str, *, htmx: bool = False, ip: str = "127.0.0.1"):
    headers = {"X-CSRFToken": csrf_token(client)}
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(URL, {"code": code}, headers=headers, REMOTE_ADDR=ip)


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_url_is_named_billing_redeem():
    assert reverse("billing:redeem") == URL


def test_owner_redeems_with_htmx_and_sees_the_credit_inline(account, owner_client, make_codes):
    [code] = make_codes()

    response = post(owner_client, code, htmx=True)

    assert response.status_code == 200
    assert response.templates[0].name == "billing/_redeem-result.html"
    html = response.content.decode()
    assert 'data-outcome="redeemed"' in html and "$10.00 added to your balance" in html
    assert response["HX-Trigger"] == "balance-changed"
    assert Balance.objects.get(account=account).amount_usd == Decimal("10")


def test_owner_redeems_with_a_plain_post_and_is_sent_back_with_a_message(
    account, owner_client, make_codes
):
    plan = Plan.objects.create(
        name="trial",
        title="Trial",
        price=Decimal("1"),
        credit_usd=Decimal("2.5"),
        credit_valid_days=7,
    )
    [code] = make_codes(plan=plan)

    response = post(owner_client, code)

    assert (response.status_code, response["Location"]) == (302, "/billing/")
    [message] = messages_of(response)
    assert message.startswith(
        "Code redeemed: $2.50 added to your balance; the credit is valid until"
    )
    assert Balance.objects.get(account=account).amount_usd == Decimal("2.5")


def test_a_refused_code_reads_the_same_with_htmx_and_without(owner_client, make_codes):
    [code] = make_codes()
    assert post(owner_client, code).status_code == 302  # redeemed

    inline = post(owner_client, code, htmx=True)
    plain = post(owner_client, "PB-ZZZZ-ZZZZ-ZZZZ-ZZZZ")

    assert "This code is not valid." in inline.content.decode()
    assert "HX-Trigger" not in inline
    assert messages_of(plain)[-1] == "This code is not valid."  # after the first's
    assert Redemption.objects.count() == 1


def test_a_throttled_account_is_told_to_wait(owner_client):
    for n in range(10):
        post(owner_client, f"PB-ZZZZ-ZZZZ-ZZZZ-{n:04d}", htmx=True)

    response = post(owner_client, "PB-ZZZZ-ZZZZ-ZZZZ-ZZZZ", htmx=True)

    assert "Too many attempts; try again in a minute." in response.content.decode()


def test_something_that_is_not_a_code_gets_a_form_error_and_costs_no_attempt(owner_client):
    for _ in range(12):
        response = post(owner_client, "hello", htmx=True)

    html = response.content.decode()
    assert 'data-outcome="form"' in html and "A code is PB- and 16 letters and digits" in html
    assert messages_of(post(owner_client, "")) == ["This field is required."]


def test_logged_out_is_sent_to_log_in_and_nothing_is_redeemed(anonymous_client, make_codes):
    [code] = make_codes()

    response = post(anonymous_client, code)

    assert response.status_code == 302 and response["Location"].startswith("/login/")
    assert not Redemption.objects.exists()


def test_a_post_without_the_csrf_token_is_refused(owner, make_codes):
    [code] = make_codes()
    client = browser_like_client(owner)

    response = client.post(URL, {"code": code})

    assert response.status_code == 403
    assert not Redemption.objects.exists()


def test_get_is_not_allowed(owner_client):
    assert owner_client.get(URL).status_code == 405


def test_the_credit_goes_to_the_signed_in_account_only(account, make_account, make_codes):
    other = make_account()
    [code] = make_codes()

    post(browser_like_client(other.users.get()), code, htmx=True)

    assert Balance.objects.get(account=other).amount_usd == Decimal("10")
    assert not Balance.objects.filter(account=account).exists()


def test_the_redeem_form_partial_posts_to_the_view_with_htmx():
    html = render_to_string("billing/_redeem-form.html", {"redeem_form": RedeemForm()})

    assert f'hx-post="{URL}"' in html and f'action="{URL}"' in html
    assert 'hx-target="#redeem-result"' in html and 'id="redeem-result"' in html
    assert 'name="code"' in html


def test_the_credit_validity_is_shown_in_the_accounts_time_zone(account, owner_client, make_codes):
    account.timezone = "Pacific/Kiritimati"  # UTC+14: the date differs from UTC's for 14 hours
    account.save()
    plan = Plan.objects.create(
        name="day", title="Day", price=Decimal("1"), credit_usd=Decimal("1"), credit_valid_days=1
    )
    [code] = make_codes(plan=plan)

    html = post(owner_client, code, htmx=True).content.decode()

    expected = (timezone.now() + timedelta(days=1)).astimezone(ZoneInfo("Pacific/Kiritimati"))
    assert f"valid until {expected.day} {expected:%b %Y}" in html
