"""The usage page and its CSV export. Both read the rollups of the signed-in
account only: a key id of another account is not among the filter's choices,
so it is refused as a form error and nothing of it is shown."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.http import HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import patch_vary_headers

from accounts.decorators import account_required, current_account
from console.htmx import HtmxHttpRequest
from usage import reports
from usage.csv import csv_response
from usage.dashboard import dashboard
from usage.forms import UsageFilterForm


def _form(request: HtmxHttpRequest, names: dict[int, str]) -> UsageFilterForm:
    account = current_account(request)
    return UsageFilterForm(request.GET, keys=names, models=reports.model_names(account))


@account_required
def usage_page(request: HtmxHttpRequest) -> HttpResponse:
    account = current_account(request)
    names = reports.key_names(account)
    form = _form(request, names)
    context: dict = {"form": form, "query": _query(request.GET)}
    if form.is_valid():
        filters = form.filters(ZoneInfo(account.timezone), timezone.now())
        context["report"] = dashboard(account, filters, names)
    status = 200 if form.is_valid() else 400
    partial = request.htmx and not request.htmx.history_restore_request
    template = "usage/usage-report.html" if partial else "usage/page.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    return response


@account_required
def usage_export(request: HtmxHttpRequest) -> HttpResponse:
    account = current_account(request)
    names = reports.key_names(account)
    form = _form(request, names)
    if not form.is_valid():
        return render(request, "usage/page.html", {"form": form}, status=400)
    filters = form.filters(ZoneInfo(account.timezone), timezone.now())
    span = filters.span
    filename = f"usage-{span.first_day:%Y%m%d}-{span.last_day:%Y%m%d}.csv"
    rows = reports.export_rows(account, filters, names)
    # A StreamingHttpResponse is no HttpResponse subclass, but serves as one.
    return csv_response(request, filename, reports.EXPORT_HEADER, rows)  # type: ignore[return-value]


def _query(params: QueryDict) -> str:
    """The filters as a query string, for the export link."""
    return params.urlencode()
