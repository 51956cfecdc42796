"""Redemption codes in the admin: "Generate codes" for a plan (the batch's add
page), which shows the new codes and offers their CSV in that one response
and nowhere else; batches, codes and redemptions to look up afterwards."""

from __future__ import annotations

import base64

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from billing.codes import MAX_BATCH, code_batch_create, code_hash, code_normalise, codes_csv
from billing.codes_models import CodeBatch, Redemption, RedemptionCode
from billing.models import Plan


@admin.action(description="Generate codes for the selected plan")
def generate_codes(modeladmin, request: HttpRequest, queryset: QuerySet[Plan]):
    """A Plan admin action: on to the batch form with the plan chosen."""
    plans = list(queryset[:2])
    if len(plans) != 1:
        modeladmin.message_user(request, "Choose one plan to make codes for.", messages.WARNING)
        return None
    return HttpResponseRedirect(f"{reverse('admin:billing_codebatch_add')}?plan={plans[0].pk}")


class CodeBatchForm(forms.ModelForm):
    count = forms.IntegerField(min_value=1, max_value=MAX_BATCH, initial=1)
    uses_per_code = forms.IntegerField(
        min_value=1, initial=1, help_text="How many accounts can redeem each code (each once)."
    )

    class Meta:
        model = CodeBatch
        fields = ("plan", "count", "uses_per_code", "redeem_by", "note")

    def clean_redeem_by(self):
        redeem_by = self.cleaned_data["redeem_by"]
        if redeem_by is not None and redeem_by <= timezone.now():
            raise ValidationError("This date has passed.")
        return redeem_by


@admin.register(CodeBatch)
class CodeBatchAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "plan",
        "count",
        "uses_per_code",
        "redeemed",
        "redeem_by",
        "note",
        "created_by",
    )
    list_filter = ("plan",)
    search_fields = ("note", "plan__name")
    actions = ("void_codes",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("plan", "created_by")
            .annotate(redemption_count=Count("codes__redemptions"))
        )

    @admin.display(description="Redeemed", ordering="redemption_count")
    def redeemed(self, batch: CodeBatch) -> int:
        return batch.redemption_count  # type: ignore[attr-defined]

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CodeBatchForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return ("plan", "count", "uses_per_code", "redeem_by", "created_by", "created_at")

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["note"])
            return
        batch, codes = code_batch_create(
            plan=form.cleaned_data["plan"],
            count=form.cleaned_data["count"],
            uses=form.cleaned_data["uses_per_code"],
            redeem_by=form.cleaned_data["redeem_by"],
            note=form.cleaned_data["note"],
            created_by=request.user,
        )
        obj.pk = batch.pk
        obj.refresh_from_db()
        # Only in memory, for response_add below: this one response shows them.
        obj.new_codes = codes

    def response_add(self, request, obj, post_url_continue=None) -> HttpResponse:
        codes = getattr(obj, "new_codes", None)
        if codes is None:
            return super().response_add(request, obj, post_url_continue)
        csv_text = codes_csv(obj, codes)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{len(codes)} codes for {obj.plan}",
            "batch": obj,
            "codes": codes,
            "csv_href": "data:text/csv;charset=utf-8;base64,"
            + base64.b64encode(csv_text.encode()).decode(),
            "csv_name": f"codes-{obj.plan.name}-batch-{obj.pk}.csv",
        }
        response = TemplateResponse(request, "admin/billing/codebatch/codes-created.html", context)
        add_never_cache_headers(response)  # the only copy of the codes: kept by no cache
        return response

    @admin.action(description="Void the selected batches' codes (no more redemptions)")
    def void_codes(self, request, queryset: QuerySet[CodeBatch]) -> None:
        voided = RedemptionCode.objects.filter(batch__in=queryset, uses_left__gt=0).update(
            uses_left=0
        )
        self.message_user(request, f"Voided {voided} codes; what they credited stays credited.")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(RedemptionCode)
class RedemptionCodeAdmin(admin.ModelAdmin):
    """Codes by their first group, or found by pasting a whole code in the
    search box (matched by its hash). Their deadline and uses left can be
    changed; the code itself is nowhere to be seen."""

    list_display = ("__str__", "batch", "plan", "uses_left", "redeem_by")
    list_select_related = ("batch__plan",)
    list_filter = ("batch__plan",)
    search_fields = ("lookup",)
    fields = ("batch", "lookup", "uses_left", "redeem_by")
    readonly_fields = ("batch", "lookup")

    @admin.display(description="Plan")
    def plan(self, code: RedemptionCode) -> Plan:
        return code.batch.plan

    def get_search_results(self, request, queryset, search_term):
        body = code_normalise(search_term)
        if body is not None:
            return queryset.filter(code_hash=code_hash(body)), False
        term = search_term.strip().upper().removeprefix("PB-").removeprefix("PB")
        return super().get_search_results(request, queryset, term[:4])

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    list_display = ("redeemed_at", "code", "account", "ledger_entry", "ip")
    list_select_related = ("code", "account", "ledger_entry")
    search_fields = ("code__lookup", "account__name", "ip")
    raw_id_fields = ("code", "account", "ledger_entry")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
