"""The API-key workspace. Every key is looked up through _get_key_for_user, so
another account's key is a 404, never someone else's data."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from accounts.decorators import account_required, current_account
from accounts.selectors import account_alert_email
from billing.selectors import balance_of
from console.htmx import HtmxHttpRequest
from console.methods import post_only
from gateway.limits import current_rate
from gateway.selectors import price_list
from keys.forms import KeyForm, RotateForm
from keys.models import ApiKey
from keys.services import (
    key_create,
    key_delete,
    key_revoke_previous,
    key_rotate,
    key_set_active,
    key_update,
)
from usage.anomalies import open_anomalies
from usage.selectors import key_meters, spend_by_key, usage_recent, usage_summary


def _get_key_for_user(request: HttpRequest, key_id: int) -> ApiKey:
    return get_object_or_404(ApiKey, pk=key_id, account=current_account(request))


def _data(request: HttpRequest):
    return request.POST if request.method == "POST" else None


@account_required
def key_list(request: HttpRequest) -> HttpResponse:
    account = current_account(request)
    keys = list(ApiKey.objects.filter(account=account))
    spend = spend_by_key(account=account)
    rows = [
        (key, spend.get(key.pk), key_meters(api_key=key, current_rate=current_rate)) for key in keys
    ]
    context = {"rows": rows, "balance": balance_of(account=account)}
    return render(request, "keys/list.html", context)


@account_required
@never_cache  # the response that shows a new secret must not be kept anywhere
@require_http_methods(["GET", "POST"])
def key_create_view(request: HtmxHttpRequest) -> HttpResponse:
    account = current_account(request)
    prices = price_list()
    form = KeyForm(
        _data(request), model_ids=prices.models, alerts_default=account_alert_email(account)
    )
    context: dict = {"form": form, "prices": prices, "api_base": settings.PUREBRIDGE_API_BASE_URL}
    if form.is_valid():
        context["key"], context["secret"] = key_create(account=account, **form.cleaned_data)
    if request.htmx:
        partial = "keys/key-created.html" if "secret" in context else "keys/key-form.html"
        return render(request, partial, context)
    return render(request, "keys/create.html", context)


@account_required
def key_detail(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    account = current_account(request)
    context = {
        "key": key,
        "summary": usage_summary(account=account, api_key=key),
        "records": usage_recent(account=account, api_key=key, limit=25),
        "meters": key_meters(api_key=key, current_rate=current_rate),
        "anomalies": open_anomalies(account=account, api_key=key),
    }
    return render(request, "keys/detail.html", context)


@account_required
@require_http_methods(["GET", "POST"])
def key_edit(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    prices = price_list()
    form = KeyForm.for_key(
        key,
        _data(request),
        model_ids=prices.models,
        alerts_default=account_alert_email(current_account(request)),
    )
    if form.is_valid():
        changed = {name: form.cleaned_data[name] for name in form.changed_data}
        if changed:
            key_update(api_key=key, **changed)
        messages.success(request, f"Saved {key.name}. The gateway applies it within seconds.")
        return redirect("keys:detail", key_id=key.pk)
    return render(request, "keys/edit.html", {"key": key, "form": form, "prices": prices})


@account_required
@post_only
def key_set_status(request: HtmxHttpRequest, key_id: int, active: bool) -> HttpResponse:
    key = key_set_active(api_key=_get_key_for_user(request, key_id), active=active)
    if request.htmx:
        return render(request, "keys/key-summary.html", {"key": key})
    messages.success(request, f"{key.name} is {'enabled' if active else 'disabled'}.")
    return redirect("keys:detail", key_id=key.pk)


@account_required
@never_cache
@require_http_methods(["GET", "POST"])
def key_rotate_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    form = RotateForm(_data(request))
    context: dict = {"key": key, "form": form, "api_base": settings.PUREBRIDGE_API_BASE_URL}
    if form.is_valid():
        context["key"], context["secret"] = key_rotate(
            api_key=key, grace=form.cleaned_data["grace"]
        )
    return render(request, "keys/rotate.html", context)


@account_required
@post_only
def key_revoke_previous_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = key_revoke_previous(api_key=_get_key_for_user(request, key_id))
    messages.success(request, "The previous secret no longer works.")
    return redirect("keys:detail", key_id=key.pk)


@account_required
@require_http_methods(["GET", "POST"])
def key_delete_view(request: HttpRequest, key_id: int) -> HttpResponse:
    key = _get_key_for_user(request, key_id)
    if request.method == "POST":
        key_delete(api_key=key)
        messages.success(request, f"Deleted {key.name}. Requests with it are refused.")
        return redirect("keys:list")
    return render(request, "keys/delete.html", {"key": key})
