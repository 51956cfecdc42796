from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.decorators import account_required, current_account
from billing.selectors import balance_of
from console.docs import (
    FALLBACK_EMBEDDING_MODEL,
    FALLBACK_MODEL,
    PLACEHOLDER_KEY,
    docs_snippets,
)
from console.htmx import HtmxHttpRequest
from gateway.selectors import price_list
from keys.models import ApiKey
from usage.anomalies import open_anomalies
from usage.selectors import spend_by_key, usage_recent, usage_summary

OVERVIEW_KEYS = 6


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "console/landing.html", {"api_base": _api_base()})
    return overview(request)


@account_required
def overview(request: HttpRequest) -> HttpResponse:
    account = current_account(request)
    keys = list(ApiKey.objects.filter(account=account))
    spend = spend_by_key(account=account)
    context = {
        "summary": usage_summary(account=account),
        "key_rows": [(key, spend.get(key.pk)) for key in keys[:OVERVIEW_KEYS]],
        "key_count": len(keys),
        "active_count": sum(key.status == "active" for key in keys),
        "keys_sub": f"of {len(keys)} in total",
        "records": usage_recent(account=account, limit=10),
        "balance": balance_of(account=account),
        "anomalies": open_anomalies(account=account),
    }
    return render(request, "console/overview.html", context)


@require_GET
def docs(request: HtmxHttpRequest) -> HttpResponse:
    prices = price_list()
    models = prices.models
    requested = request.GET.get("model", "")
    model = requested if requested in models else (models[0] if models else FALLBACK_MODEL)
    embedders = prices.embedding_models
    embedding_model = (
        model if model in embedders else (embedders[0] if embedders else FALLBACK_EMBEDDING_MODEL)
    )
    context = {
        "api_base": _api_base(),
        "models": models,
        "model": model,
        "placeholder_key": PLACEHOLDER_KEY,
        "prices": prices,
        "snippets": docs_snippets(
            base_url=_api_base(), model=model, models=models, embedding_model=embedding_model
        ),
    }
    if request.htmx:
        return render(request, "console/docs-content.html", context)
    return render(request, "console/docs.html", context)


@require_GET
def pricing(request: HttpRequest) -> HttpResponse:
    return render(request, "console/pricing.html", {"prices": price_list()})


def _api_base() -> str:
    return settings.PUREBRIDGE_API_BASE_URL.rstrip("/")
