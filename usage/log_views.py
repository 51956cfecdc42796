"""The request log (GET /usage/requests/), one request's page and the log as
CSV. The filters are a GET form, so the URL holds them; htmx swaps only the
results (and pushes the URL), a plain GET renders the whole page. Every read
is scoped to the signed-in account: another account's request is a 404."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, QueryDict
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import push_url

from accounts.decorators import account_required, current_account
from console.htmx import HtmxHttpRequest
from gateway.models import CatalogModel
from usage.csv import csv_response
from usage.log import log_page
from usage.log_export import export_filename, export_header, export_rows
from usage.log_forms import LogFilterForm
from usage.models import UsageRecord
from usage.receipt import ModelPrices, estimate_explained, receipt_for


@account_required
@require_GET
@vary_on_headers("HX-Request")
def request_log(request: HtmxHttpRequest) -> HttpResponse:
    account = current_account(request)
    form = LogFilterForm(request.GET, account=account)
    query = _filter_query(request.GET)
    log_url = reverse("usage:log") + (f"?{query}" if query else "")
    page_url = f"{log_url}{'&' if query else '?'}cursor="
    context: dict[str, object] = {"form": form, "page": None, "query": query, "page_url": page_url}
    if form.is_valid():
        context["page"] = log_page(
            account=account, filters=form.filters(), cursor=form.cleaned_data["cursor"]
        )
    if request.htmx and not request.htmx.history_restore_request:
        response = render(request, "usage/log/log-results.html", context)
        # The address bar shows the filters set, not every empty field of the
        # form; a cursor only once verified (it goes into a header).
        page = context["page"]
        token = request.GET["cursor"] if page and form.cleaned_data["cursor"] else ""
        return push_url(response, page_url + token if token else log_url)
    context["models"] = CatalogModel.objects.values_list("public_id", flat=True)
    return render(request, "usage/log/page.html", context)


@account_required
@require_GET
def request_detail(request: HttpRequest, request_id: str) -> HttpResponse:
    record = get_object_or_404(
        UsageRecord.objects.select_related("api_key"),
        account=current_account(request),
        request_id=request_id,
    )
    context = {
        "record": record,
        "receipt": receipt_for(record, _prices(record.model)),
        "estimate": estimate_explained(record.estimate_reason) if record.estimated else "",
    }
    return render(request, "usage/log/request.html", context)


@account_required
@require_GET
def request_log_export(request: HttpRequest) -> HttpResponseBase:
    account = current_account(request)
    form = LogFilterForm(request.GET, account=account)
    if not form.is_valid():
        errors = [f"{name}: {' '.join(map(str, texts))}" for name, texts in form.errors.items()]
        return HttpResponse("\n".join(errors), status=400, content_type="text/plain")
    rows = export_rows(account=account, filters=form.filters())
    filename = export_filename(account, timezone.now())
    return csv_response(request, filename, export_header(account), rows)


def _filter_query(params: QueryDict) -> str:
    """The URL's filters, without the page (the cursor) and empty fields."""
    query = QueryDict(mutable=True)
    for name in LogFilterForm.base_fields:
        values = [value for value in params.getlist(name) if value]
        if values and name != "cursor":
            query.setlist(name, values)
    return query.urlencode()


def _prices(model: str) -> ModelPrices | None:
    row = CatalogModel.objects.filter(public_id=model).first()
    if row is None:
        return None
    return ModelPrices(
        input=row.input_per_mtok,
        cached_input=row.cached_input_per_mtok,
        output=row.output_per_mtok,
        cache_write=row.cache_write_per_mtok,
    )
