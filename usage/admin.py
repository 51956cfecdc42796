from django.contrib import admin

from usage.models import RefusedTally, UsageHourly, UsageRecord


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "request_id",
        "account",
        "model",
        "provider",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "estimated",
    )
    list_filter = ("status", "stream", "estimated", "endpoint")
    search_fields = ("request_id", "upstream_request_id", "client_request_id", "model")
    date_hierarchy = "created_at"
    raw_id_fields = ("account", "api_key")

    # The ledger of requests is append-only.
    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(UsageHourly)
class UsageHourlyAdmin(admin.ModelAdmin):
    list_display = ("hour", "account", "api_key_id", "model", "requests", "errors", "cost_usd")
    date_hierarchy = "hour"

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(RefusedTally)
class RefusedTallyAdmin(admin.ModelAdmin):
    """Refusals for want of any key past those recorded in full (gateway/refusals.py)."""

    list_display = ("minute", "client", "refused")
    search_fields = ("client",)
    date_hierarchy = "minute"

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
