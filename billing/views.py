"""The billing page, GET /billing/: the balance, the plans for sale, the
redeem form and the ledger's history; and its low-balance alert setting.

The balance and the history are partials the page refreshes with htmx when a
code is redeemed (HX-Trigger: balance-changed); each is also a plain GET
(`?partial=balance`, `?partial=history&page=N`), so links work without JS."""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.decorators import account_required, current_account
from billing import stripe_api
from billing.codes_forms import RedeemForm
from billing.page_forms import LowBalanceAlertForm
from billing.selectors import balance_of, ledger_page, plans_for_sale
from billing.services import low_balance_alert_set
from console.htmx import HtmxHttpRequest
from console.methods import post_only
from console.templatetags.pb import usd
from gateway.limits import reserved_in_flight

PARTIALS = {"balance": "billing/balance-panel.html", "history": "billing/ledger-history.html"}


@account_required
@require_GET
def billing_page(request: HtmxHttpRequest) -> HttpResponse:
    account = current_account(request)
    balance = balance_of(account=account, reserved_in_flight=reserved_in_flight)
    partial = request.GET.get("partial", "")
    if partial == "balance":
        return render(request, PARTIALS[partial], {"balance": balance})
    context = {
        "balance": balance,
        "history": ledger_page(account=account, number=request.GET.get("page")),
    }
    if partial in PARTIALS:
        return render(request, PARTIALS[partial], context)
    context |= {
        "plans": plans_for_sale(),
        "can_buy": stripe_api.configured(),
        # A fresh attempt per render: a double-click posts the same one and
        # gets the same Checkout Session (billing.checkout.checkout_start).
        "attempt": secrets.token_urlsafe(16),
        "redeem_form": RedeemForm(),
        "alert_form": LowBalanceAlertForm(initial={"amount": balance.low_balance_alert_usd}),
    }
    return render(request, "billing/page.html", context)


@account_required
@post_only
def low_balance_alert(request: HtmxHttpRequest) -> HttpResponse:
    account = current_account(request)
    form = LowBalanceAlertForm(request.POST)
    saved = form.is_valid()
    if saved:
        low_balance_alert_set(account=account, amount=form.cleaned_data["amount"])
    if request.htmx:
        return render(request, "billing/alert-form.html", {"alert_form": form, "saved": saved})
    if not saved:
        messages.error(request, " ".join(str(error) for error in form.errors.get("amount", [])))
    elif form.cleaned_data["amount"] is None:
        messages.success(request, "Low-balance alert turned off.")
    else:
        messages.success(
            request,
            f"We will email you when your balance falls below {usd(form.cleaned_data['amount'])}.",
        )
    return redirect("billing:page")
