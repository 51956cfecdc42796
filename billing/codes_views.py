"""Redeeming a code from the billing page: POST /billing/redeem."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats, timezone

from accounts.decorators import account_required, current_account
from accounts.throttle import client_ip
from billing.codes import code_redeem
from billing.codes_forms import RedeemForm
from billing.models import LedgerEntry
from console.htmx import HtmxHttpRequest
from console.methods import post_only
from console.templatetags.pb import usd


@account_required
@post_only
def redeem(request: HtmxHttpRequest) -> HttpResponse:
    form = RedeemForm(request.POST)
    result = None
    if form.is_valid():
        result = code_redeem(
            account=current_account(request), code=form.cleaned_data["code"], ip=client_ip(request)
        )
    if request.htmx:
        response = render(request, "billing/_redeem-result.html", {"form": form, "result": result})
        if result is not None and result.ok:
            response["HX-Trigger"] = "balance-changed"  # the page refreshes balance and history
        return response
    if result is None:
        messages.error(request, " ".join(str(error) for error in form.errors.get("code", [])))
    elif result.ok and result.entry is not None:
        messages.success(request, _redeemed(result.entry))
    else:
        messages.error(request, result.message)
    return redirect("billing:page")  # a plain form post goes back to the page


def _redeemed(entry: LedgerEntry) -> str:
    """What _redeem-result.html says of a redemption, as a message."""
    text = f"Code redeemed: {usd(entry.amount_usd)} added to your balance"
    if entry.expires_at is not None:
        until = formats.date_format(timezone.localtime(entry.expires_at), "j M Y")
        text += f"; the credit is valid until {until}"
    return text + "."
