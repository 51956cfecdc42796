from django.contrib import admin, messages
from django.db import models

from keys.forms import AddressListField, KeyForm, UsdField
from keys.models import ApiKey
from keys.services import SETTINGS, key_create


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "display_prefix", "account", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("name", "display_prefix", "account__name")
    raw_id_fields = ("account",)
    formfield_overrides = {
        models.DecimalField: {
            "form_class": UsdField,
            "help_text": "USD, up to 6 decimal places. Empty: no limit.",
        }
    }
    readonly_fields = (
        "lookup",
        "secret_hash",
        "display_prefix",
        "previous_lookup",
        "previous_secret_hash",
        "previous_valid_until",
        "created_at",
        "updated_at",
        "last_used_at",
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "allowed_ips":
            # The console's field: the same parsing, errors and one-a-line display.
            return AddressListField(
                label="Allowed IPs", help_text=KeyForm.base_fields["allowed_ips"].help_text
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new key's secret comes from the service and is shown here once.
        created, secret = key_create(
            account=obj.account,
            name=obj.name,
            **{name: form.cleaned_data.get(name) for name in SETTINGS if name != "name"},
        )
        if not obj.is_active:
            created.is_active = False
            created.save(update_fields=["is_active"])
        obj.pk = created.pk
        obj.refresh_from_db()
        messages.warning(request, f"New key secret (shown once, copy it now): {secret}")
