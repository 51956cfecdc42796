from django.contrib import admin, messages

from keys.models import ApiKey
from keys.services import key_create


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "display_prefix", "account", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("name", "display_prefix", "account__name")
    raw_id_fields = ("account",)
    readonly_fields = (
        "lookup",
        "secret_hash",
        "display_prefix",
        "created_at",
        "updated_at",
        "last_used_at",
    )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new key gets its secret from the service; the admin shows it once.
        fields = {
            f: form.cleaned_data.get(f) for f in form.cleaned_data if f not in {"account", "name"}
        }
        created, secret = key_create(
            account=obj.account,
            name=obj.name,
            **{
                k: v
                for k, v in fields.items()
                if k
                in {
                    "expires_at",
                    "allowed_models",
                    "rpm_limit",
                    "tpm_limit",
                    "quota_usd",
                    "daily_budget_usd",
                    "monthly_budget_usd",
                    "notification_email",
                }
            },
        )
        obj.pk = created.pk
        obj.refresh_from_db()
        messages.warning(request, f"New key secret (shown once, copy it now): {secret}")
