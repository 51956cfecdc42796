from django import forms
from django.contrib import admin

from gateway.models import CatalogModel, Provider, Route


class ProviderForm(forms.ModelForm):
    base_url = forms.URLField(max_length=500, required=False, assume_scheme="https")
    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted. Leave empty to keep the current key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")

    class Meta:
        model = Provider
        fields = (
            "name",
            "kind",
            "base_url",
            "enabled",
            "responses_api",
            "connect_timeout",
            "first_byte_timeout",
            "idle_timeout",
            "total_timeout",
        )

    def save(self, commit=True):
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            provider.api_key = ""
        elif self.cleaned_data.get("api_key"):
            provider.api_key = self.cleaned_data["api_key"]
        if commit:
            provider.save()
        return provider


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    form = ProviderForm
    list_display = ("name", "kind", "base_url", "enabled", "has_api_key", "first_byte_timeout")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "base_url")

    @admin.display(boolean=True, description="API key")
    def has_api_key(self, obj: Provider) -> bool:
        return bool(obj.api_key_encrypted)


class RouteInline(admin.TabularInline):
    model = Route
    extra = 1
    fields = ("priority", "weight", "provider", "upstream_model", "enabled")


@admin.register(CatalogModel)
class CatalogModelAdmin(admin.ModelAdmin):
    list_display = (
        "public_id",
        "kind",
        "enabled",
        "input_per_mtok",
        "cached_input_per_mtok",
        "output_per_mtok",
        "route_summary",
    )
    list_filter = ("kind", "enabled")
    search_fields = ("public_id",)
    inlines = [RouteInline]

    @admin.display(description="Routes")
    def route_summary(self, obj: CatalogModel) -> str:
        return ", ".join(f"{r.provider.name}/{r.upstream_model}" for r in obj.routes.all())

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("routes__provider")
