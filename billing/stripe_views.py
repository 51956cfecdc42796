"""Buying a plan with Stripe Checkout: "Buy" (a POST from the billing page),
the pages Stripe sends the customer back to, and Stripe's webhook."""

from __future__ import annotations

import logging

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.decorators import account_required, current_account
from billing import stripe_api
from billing.checkout import PlanNotForSale, checkout_fulfil, checkout_start
from billing.models import Balance, Plan, Purchase
from billing.webhook import stripe_webhook_receive
from console.htmx import HtmxHttpRequest
from console.methods import post_only

log = logging.getLogger(__name__)


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


def _plan_for_sale(ref: str) -> Plan:
    """An active plan by id or name, or 404."""
    match = (Q(name=ref) | Q(pk=int(ref))) if ref.isdigit() else Q(name=ref)
    return get_object_or_404(Plan, match, active=True)


@account_required
@post_only
def checkout_buy(request: HtmxHttpRequest) -> HttpResponse:
    plan = _plan_for_sale(request.POST.get("plan", "").strip())
    try:
        started = checkout_start(
            account=current_account(request),
            plan=plan,
            email=getattr(request.user, "email", ""),
            attempt=request.POST.get("attempt", ""),
        )
    except (stripe_api.StripeFailure, PlanNotForSale) as exc:
        log.error("checkout of plan %s could not start: %s", plan.name, exc)
        return render(request, "billing/checkout-unavailable.html", {"plan": plan}, status=503)
    if request.htmx:
        return HttpResponseClientRedirect(started.url)
    return HttpResponseSeeOther(started.url)


@account_required
@never_cache
@require_GET
def checkout_success(request: HttpRequest) -> HttpResponse:
    """Where Stripe sends the customer after paying: the purchase is fulfilled
    here too (a lost webhook still credits), so reloading is harmless."""
    purchase = get_object_or_404(
        Purchase.objects.select_related("plan"),
        session_id=request.GET.get("session_id", ""),
        account=current_account(request),
    )
    unconfirmed = False
    try:
        purchase = checkout_fulfil(purchase.session_id) or purchase
    except stripe_api.StripeFailure as exc:
        log.warning("success page: %s", exc)
        unconfirmed = True
    balance = Balance.objects.filter(account=purchase.account_id).first()
    context = {
        "purchase": purchase,
        "paid": stripe_api.major_units(purchase.amount_total, purchase.currency),
        "balance": balance,
        "unconfirmed": unconfirmed,
    }
    return render(request, "billing/checkout-success.html", context)


@account_required
@require_GET
def checkout_cancel(request: HttpRequest) -> HttpResponse:
    plan = Plan.objects.filter(name=request.GET.get("plan", "")).first()
    return render(request, "billing/checkout-cancel.html", {"plan": plan})


@csrf_exempt  # Stripe signs its deliveries instead (billing.webhook)
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    answer = stripe_webhook_receive(request.body, request.headers.get("Stripe-Signature"))
    return HttpResponse(answer.text, status=answer.status, content_type="text/plain")
