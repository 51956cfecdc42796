import uuid

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied

from billing.codes_admin import generate_codes  # registers the code admins too
from billing.models import Balance, LedgerEntry, Plan, Purchase, StripeDispute, StripeEvent
from billing.services import ledger_post


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "title",
        "price",
        "currency",
        "credit_usd",
        "credit_valid_days",
        "active",
        "recommended",
        "display_order",
    )
    list_filter = ("active",)
    search_fields = ("name", "title")
    actions = (generate_codes,)


class AdjustmentForm(forms.ModelForm):
    """A manual entry: an amount and the reason for it; the rest is the ledger's."""

    class Meta:
        model = LedgerEntry
        fields = ("account", "amount_usd", "reason")

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Say why: it stays on the ledger for good.")
        return reason


@admin.register(LedgerEntry)
class LedgerEntryAdmin(admin.ModelAdmin):
    """The ledger, read-only but for manual adjustments, which are posted like
    every other entry (a new entry, never an edit)."""

    list_display = ("created_at", "account", "kind", "amount_usd", "balance_after_usd", "source")
    list_filter = ("kind",)
    search_fields = ("source", "reference", "account__name")
    raw_id_fields = ("account",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = AdjustmentForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return [f.name for f in LedgerEntry._meta.fields]

    def save_model(self, request, obj, form, change):
        if change:
            raise PermissionDenied("Ledger entries are append-only.")
        entry = ledger_post(
            account_id=obj.account_id,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=form.cleaned_data["amount_usd"],
            source=f"adjustment:{uuid.uuid4()}",
            reason=form.cleaned_data["reason"],
            created_by=request.user,
        )
        assert entry is not None
        obj.pk = entry.pk
        obj.refresh_from_db()
        messages.success(request, f"Posted; the balance is now {entry.balance_after_usd}.")

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Balance)
class BalanceAdmin(admin.ModelAdmin):
    list_display = (
        "account",
        "amount_usd",
        "credited_usd",
        "used_usd",
        "blocked_reason",
        "updated_at",
    )
    search_fields = ("account__name",)
    readonly_fields = (
        "account",
        "amount_usd",
        "credited_usd",
        "used_usd",
        "blocked_reason",
        "updated_at",
    )

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Stripe's records as PureBridge received them: to read, never to edit
    (money moves through the ledger only)."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "account",
        "plan",
        "amount_total",
        "currency",
        "status",
        "amount_refunded",
        "session_id",
    )
    list_filter = ("status",)
    search_fields = ("session_id", "payment_intent_id", "charge_id", "account__name")


@admin.register(StripeDispute)
class StripeDisputeAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "dispute_id", "purchase", "amount", "currency", "status")
    list_filter = ("status",)
    search_fields = ("dispute_id", "purchase__session_id")


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "event_id", "type", "deliveries", "processed_at", "error")
    list_filter = ("type",)
    search_fields = ("event_id",)
