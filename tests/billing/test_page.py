"""GET /billing/: the balance, the plans, the redeem form and the ledger's
history of the signed-in account, and its partials; POST the low-balance
alert setting."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Balance, LedgerEntry, Plan
from billing.services import ledger_post
from tests.web import browser_like_client, csrf_token

URL = "/billing/"


@pytest.fixture
def outsider_client(make_account):
    return browser_like_client(make_account().users.get())


def post(account, amount: str, source: str, kind: str = "purchase", **fields) -> LedgerEntry:
    entry = ledger_post(
        account_id=account.pk, kind=kind, amount=Decimal(amount), source=source, **fields
    )
    assert entry is not None
    return entry


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-kind="(\w+)">', html)


def test_the_url_is_named_billing_page():
    assert reverse("billing:page") == URL


def test_logged_out_visitor_is_sent_to_log_in(anonymous_client):
    for url in (URL, URL + "?partial=balance", URL + "?partial=history"):
        response = anonymous_client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login") + "?next=/billing/")


def test_logged_out_visitor_cannot_set_an_alert(anonymous_client):
    response = anonymous_client.post(
        reverse("billing:low_balance_alert"),
        {"amount": "5"},
        headers={"X-CSRFToken": csrf_token(anonymous_client)},
    )
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_owner_sees_the_balance_large(account, owner_client):
    post(account, "12.5", "t:1")

    response = owner_client.get(URL)

    assert response.status_code == 200
    assert response.templates[0].name == "billing/page.html"
    html = response.content.decode()
    assert re.search(r'id="balance"[^>]*>\$12\.50<', html)


def test_a_negative_balance_reads_as_owed(account, owner_client):
    post(account, "-1.23", "t:1", kind="usage")

    html = owner_client.get(URL).content.decode()

    assert "You owe $1.23" in html


def test_a_balance_after_a_tiny_spend_shows_the_spend(account, owner_client):
    post(account, "5", "t:1")
    post(account, "-0.0006", "usage:1:a", kind="usage")
    post(account, "-0.00003", "usage:1:b", kind="usage")

    html = owner_client.get(URL).content.decode()

    assert re.search(r'id="balance"[^>]*>\$4\.99937<', html)
    balances_after = re.findall(r'<td class="num nowrap hide-sm">([^<]*)</td>', html)
    assert balances_after == ["$4.99937", "$4.9994", "$5.00"]
    assert "−$0.00003" in html and "−$0.0006" in html


def test_the_overview_shows_the_balance_to_the_micro_dollar(account, owner_client):
    post(account, "5", "t:1")
    post(account, "-0.0006", "usage:1:a", kind="usage")

    assert "$4.9994" in owner_client.get("/").content.decode()


def test_an_account_with_no_entries_has_a_zero_balance(owner_client):
    html = owner_client.get(URL).content.decode()

    assert re.search(r'id="balance"[^>]*>\$0\.00<', html)
    assert "Purchases, redeemed codes and usage show up here." in html


def test_a_disputed_account_is_told_its_keys_are_paused(account, owner_client):
    post(account, "10", "t:1")
    Balance.objects.filter(account=account).update(blocked_reason="A payment is disputed.")

    html = owner_client.get(URL).content.decode()

    assert 'id="account-blocked"' in html and "A payment is disputed." in html


def test_active_plans_are_cards_with_a_buy_button(owner_client, settings):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_x"
    Plan.objects.create(
        name="pro",
        title="Pro",
        price=Decimal("50.00"),
        credit_usd=Decimal("60"),
        credit_valid_days=30,
        recommended=True,
        display_order=2,
    )
    Plan.objects.create(
        name="yen", title="Yen", price=Decimal("1500"), currency="jpy", credit_usd=Decimal("10")
    )
    Plan.objects.create(
        name="old", title="Old", price=Decimal("5"), credit_usd=Decimal("5"), active=False
    )

    html = owner_client.get(URL).content.decode()

    assert 'data-plan="pro"' in html and 'data-plan="yen"' in html
    assert 'data-plan="old"' not in html
    assert "$50.00" in html and "$60.00" in html and "30 days" in html
    assert "1,500 JPY" in html and "No expiry" in html
    assert "Recommended" in html
    assert html.count(f'action="{reverse("billing:buy")}"') == 2
    assert 'name="plan" value="pro"' in html


def test_each_render_carries_a_fresh_attempt_token(owner_client, settings, plan):
    settings.STRIPE_SECRET_KEY, settings.STRIPE_WEBHOOK_SECRET = "sk_test_x", "whsec_x"

    def attempt() -> str:
        html = owner_client.get(URL).content.decode()
        return re.search(r'name="attempt" value="([^"]+)"', html).group(1)

    first, second = attempt(), attempt()
    assert first != second and len(first) >= 16


def test_without_stripe_the_buy_buttons_are_hidden_with_a_note(owner_client, settings, plan):
    settings.STRIPE_SECRET_KEY = ""

    html = owner_client.get(URL).content.decode()

    assert 'data-plan="starter"' in html
    assert reverse("billing:buy") not in html
    assert 'id="buy-unavailable"' in html


def test_the_page_carries_the_redeem_form_refreshing_balance_and_history(owner_client):
    html = owner_client.get(URL).content.decode()

    assert f'hx-post="{reverse("billing:redeem")}"' in html
    assert html.count('hx-trigger="balance-changed from:body"') == 2
    assert 'hx-get="/billing/?partial=balance"' in html
    assert 'hx-get="/billing/?partial=history"' in html


def test_the_balance_partial_is_a_plain_get_too(account, owner_client):
    post(account, "3", "t:1")

    for headers in ({}, {"HX-Request": "true"}):
        response = owner_client.get(URL, {"partial": "balance"}, headers=headers)
        assert response.status_code == 200
        assert response.templates[0].name == "billing/balance-panel.html"
        html = response.content.decode()
        assert "$3.00" in html and "<html" not in html


def test_the_history_partial_is_a_plain_get_too(account, owner_client):
    post(account, "3", "t:1")

    response = owner_client.get(URL, {"partial": "history"}, headers={"HX-Request": "true"})

    assert response.templates[0].name == "billing/ledger-history.html"
    assert rows(response.content.decode()) == ["purchase"]


def test_an_unknown_partial_renders_the_whole_page(owner_client):
    response = owner_client.get(URL, {"partial": "../../etc"})

    assert response.templates[0].name == "billing/page.html"


def test_the_history_lists_date_kind_amount_balance_and_reference(account, owner_client):
    account.timezone = "Asia/Tokyo"
    account.save()
    post(
        account,
        "12.5",
        "stripe_checkout:cs_1",
        reference="Starter",
        receipt_url="https://pay.example/receipts/1",
    )
    post(account, "-0.000123", "usage:1:a", kind="usage")
    post(account, "10", "code:1", kind="redemption", reference="Code PBX1…")
    LedgerEntry.objects.filter(source="code:1").update(
        created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    )

    html = owner_client.get(URL).content.decode()

    assert rows(html) == ["usage", "purchase", "redemption"]
    assert "Mar 2, 2026 08:30" in html  # 23:30 UTC in Tokyo
    assert "+$12.50" in html and "−$0.000123" in html and "+$10.00" in html
    assert "Code redeemed" in html and "Code PBX1…" in html
    assert "$22.499877" in html  # balance after, to the micro-dollar
    assert 'href="https://pay.example/receipts/1"' in html


def test_a_refund_links_no_receipt_of_its_own(account, owner_client):
    post(account, "10", "t:1", receipt_url="https://pay.example/r/1")
    post(account, "-10", "refund:re_1", kind="refund", receipt_url="https://pay.example/r/1")

    html = owner_client.get(URL).content.decode()

    assert html.count('href="https://pay.example/r/1"') == 1


def test_the_history_is_paginated_25_a_page_newest_first(account, owner_client):
    for n in range(30):
        post(account, "1", f"t:{n}", reference=f"ref-{n:02}")

    first = owner_client.get(URL).content.decode()
    second = owner_client.get(URL, {"partial": "history", "page": "2"}).content.decode()

    assert len(rows(first)) == 25 and "ref-29" in first and "ref-05" in first
    assert "ref-04" not in first
    assert 'href="/billing/?page=2#ledger-history"' in first
    assert 'hx-get="/billing/?partial=history&amp;page=2"' in first
    assert len(rows(second)) == 5 and "ref-04" in second and "ref-00" in second
    assert "Page 2 of 2" in second and 'rel="next"' not in second


def test_a_page_past_the_end_shows_the_last(account, owner_client):
    post(account, "1", "t:1")

    response = owner_client.get(URL, {"page": "99"})

    assert response.status_code == 200 and rows(response.content.decode()) == ["purchase"]


def test_outsider_sees_only_their_own_balance_and_history(account, outsider_client):
    post(account, "42", "t:owner", reference="owner-secret-ref")

    for params in ({}, {"partial": "balance"}, {"partial": "history"}, {"page": "2"}):
        html = outsider_client.get(URL, params).content.decode()
        assert "owner-secret-ref" not in html and "$42.00" not in html


def test_outsider_pages_count_only_their_own_entries(account, make_account, owner_client):
    other = make_account()
    for n in range(30):
        post(other, "1", f"o:{n}")
    post(account, "1", "t:1")

    html = owner_client.get(URL).content.decode()

    assert len(rows(html)) == 1 and "Page 1 of" not in html


def test_the_nav_links_to_billing_and_marks_it_current(owner_client):
    html = owner_client.get(URL).content.decode()

    assert '<a href="/billing/" aria-current="page">Billing</a>' in html


def test_the_overview_shows_the_balance_linking_to_billing(account, owner_client):
    post(account, "7.25", "t:1")

    html = owner_client.get("/").content.decode()

    assert re.search(r'<a class="stat stat-link" id="overview-balance" href="/billing/">', html)
    assert "$7.25" in html


def test_the_overview_shows_a_debt_as_owed(account, owner_client):
    post(account, "-2", "t:1", kind="usage")

    assert "You owe $2.00" in owner_client.get("/").content.decode()


def set_alert(client, amount: str, *, htmx: bool = False):
    headers = {"X-CSRFToken": csrf_token(client)}
    if htmx:
        headers["HX-Request"] = "true"
    return client.post(reverse("billing:low_balance_alert"), {"amount": amount}, headers=headers)


def alert_of(account) -> Decimal | None:
    row = Balance.objects.filter(account=account).first()
    return row.low_balance_alert_usd if row else None


def test_owner_sets_the_low_balance_alert(account, owner_client):
    response = set_alert(owner_client, "5.50")

    assert response.status_code == 302 and response["Location"] == URL
    assert alert_of(account) == Decimal("5.50")
    assert 'value="5.50"' in owner_client.get(URL).content.decode()


def test_setting_the_alert_keeps_the_books(account, owner_client):
    post(account, "3", "t:1")

    set_alert(owner_client, "5")

    balance = Balance.objects.get(account=account)
    assert balance.amount_usd == Decimal("3") and balance.credited_usd == Decimal("3")


def test_owner_sets_the_alert_with_htmx_and_gets_the_form_back(account, owner_client):
    response = set_alert(owner_client, "5", htmx=True)

    assert response.templates[0].name == "billing/alert-form.html"
    assert "falls below $5.00." in response.content.decode()
    assert alert_of(account) == Decimal("5")


@pytest.mark.parametrize("htmx", [True, False])
def test_the_saved_alert_is_told_as_money(account, owner_client, htmx):
    response = set_alert(owner_client, "1.5", htmx=htmx)

    told = response.content.decode() if htmx else owner_client.get(URL).content.decode()
    assert "falls below $1.50." in told


def test_an_empty_amount_turns_the_alert_off(account, owner_client):
    set_alert(owner_client, "5")

    set_alert(owner_client, "")

    assert alert_of(account) is None


@pytest.mark.parametrize(
    "amount", ["0", "-1", "abc", "1.234", "0.001", "1000001", "1000000000", "NaN", "1e3000"]
)
def test_the_alert_amount_is_validated_with_one_message(account, owner_client, amount):
    response = set_alert(owner_client, amount, htmx=True)

    assert response.status_code == 200
    assert response.content.decode().count('class="error"') == 1
    assert alert_of(account) is None


def test_an_invalid_alert_without_htmx_goes_back_with_a_message(account, owner_client):
    response = set_alert(owner_client, "-1")

    assert response.status_code == 302
    assert alert_of(account) is None


def test_outsider_sets_only_their_own_alert(account, make_account, outsider_client):
    set_alert(outsider_client, "9")

    assert alert_of(account) is None


def test_the_alert_setting_is_post_only(owner_client):
    assert owner_client.get(reverse("billing:low_balance_alert")).status_code == 405


def test_checkout_pages_lead_back_to_billing(owner_client, plan):
    html = owner_client.get(reverse("billing:checkout_cancel"), {"plan": "starter"}).content
    assert f'href="{URL}"'.encode() in html


def test_a_plain_redeem_post_goes_back_to_the_billing_page(owner_client):
    response = owner_client.post(
        reverse("billing:redeem"), {"code": ""}, headers={"X-CSRFToken": csrf_token(owner_client)}
    )
    assert response["Location"] == URL
