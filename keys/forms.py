from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from keys.models import USD_DECIMAL_PLACES, USD_MAX_DIGITS, ApiKey, validate_key_name
from keys.networks import networks_parse, networks_split

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
PER_MINUTE_MAX = 2**31 - 1  # the columns are PostgreSQL integers
GRACE_CHOICES = [
    ("0", "No grace period: the old secret stops working now"),
    ("3600", "1 hour"),
    ("86400", "24 hours"),
    ("604800", "7 days"),
]


class UsdField(forms.DecimalField):
    """US dollars, zero or more, to the micro-dollar: the places a key's budget
    columns keep, so what is typed is stored exactly and shown back the same.
    Shown without trailing zeros (1.5, not the column's 1.500000)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_digits", USD_MAX_DIGITS)
        kwargs.setdefault("decimal_places", USD_DECIMAL_PLACES)
        kwargs.setdefault("min_value", Decimal(0))
        # "any": the arrows step whole dollars, and 0.000125 is no step mismatch.
        kwargs.setdefault("widget", forms.NumberInput(attrs={"step": "any"}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, Decimal) and value.is_finite():
            return f"{value.normalize():f}"  # :f, or 100 would be 1E+2
        return value


def _usd(label: str, help_text: str) -> UsdField:
    return UsdField(
        label=label,
        required=False,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "placeholder": "No limit"}),
    )


class LocalMinuteField(forms.DateTimeField):
    """A date and time to the minute in the current (the profile's) time zone,
    as a datetime-local input shows and posts it.

    A stored time need not fit that input: createapikey's end of a day has
    seconds, and in the hour a clock change repeats a local minute is two
    times. So the text shown for the stored time (`current`), posted back,
    means that stored time, unchanged.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("input_formats", [DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"])
        kwargs.setdefault(
            "widget", forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL)
        )
        super().__init__(**kwargs)
        self.current: datetime | None = None

    def _shows_current(self, data: Any) -> bool:
        if self.current is None or not isinstance(data, str):
            return False
        return data.strip() == self.widget.format_value(self.prepare_value(self.current))

    def to_python(self, value: Any) -> datetime | None:
        return self.current if self._shows_current(value) else super().to_python(value)

    def has_changed(self, initial: Any, data: Any) -> bool:
        return not self._shows_current(data) and super().has_changed(initial, data)


class AddressListField(forms.CharField):
    """A key's IP allowlist as typed in a textarea: addresses and CIDR ranges,
    one a line or separated by commas; cleaned to the normalised list the key
    stores (keys/networks.py), shown back one a line."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "widget",
            forms.Textarea(
                attrs={
                    "rows": 3,
                    "placeholder": "203.0.113.7\n10.0.0.0/8\n2001:db8::/32",
                    "spellcheck": "false",
                    "autocomplete": "off",
                }
            ),
        )
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return "\n".join(value)
        return value

    def to_python(self, value: Any) -> list[str]:  # type: ignore[override]
        if isinstance(value, list | tuple):
            return networks_parse(value)
        return networks_parse(networks_split(super().to_python(value) or ""))


def _per_minute(label: str) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=False,
        min_value=1,
        max_value=PER_MINUTE_MAX,
        widget=forms.NumberInput(attrs={"min": "1", "placeholder": "No limit"}),
    )


class KeyForm(forms.Form):
    """A key's settings, for creating one and for editing one."""

    name = forms.CharField(
        max_length=100,
        validators=[validate_key_name],
        help_text="What uses this key: a tool, project or workflow.",
        widget=forms.TextInput(attrs={"placeholder": "e.g. codex-laptop", "autocomplete": "off"}),
    )
    expires_at = LocalMinuteField(
        label="Expires",
        required=False,
        help_text="In your profile's time zone. Leave empty for a key that does not expire.",
    )
    allowed_models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Tick none to allow every enabled model, including ones added later.",
    )
    rpm_limit = _per_minute("Requests per minute")
    tpm_limit = _per_minute("Tokens per minute")
    quota_usd = _usd("Total quota", "The most this key may ever spend.")
    daily_budget_usd = _usd("Daily budget", "Resets at midnight in your time zone.")
    monthly_budget_usd = _usd("Monthly budget", "Resets on the 1st.")
    notification_email = forms.EmailField(
        required=False,
        help_text="Budget and quota alerts for this key. Empty: your profile's default.",
    )
    allowed_ips = AddressListField(
        label="Allowed IP addresses",
        help_text=(
            "IPv4 or IPv6 addresses and CIDR ranges, one a line or separated by commas. "
            "Requests from anywhere else get 403 ip_not_allowed. Empty: any address."
        ),
    )

    def __init__(self, *args, model_ids: list[str], alerts_default: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if alerts_default:
            # Never pre-filled: a key left empty follows the profile's default
            # when that changes; the address it would get now is named here.
            self.fields["notification_email"].help_text = (
                "Budget and quota alerts for this key. "
                f"Empty: your profile's default, now {alerts_default}."
            )
        expires_at = self.fields["expires_at"]
        assert isinstance(expires_at, LocalMinuteField)
        expires_at.current = self.initial.get("expires_at")
        # A model disabled since it was allowed stays listed so it can be unticked.
        allowed = self.initial.get("allowed_models") or []
        ids = sorted(set(model_ids) | set(allowed))
        self.fields["allowed_models"].choices = [(i, i) for i in ids]  # type: ignore[attr-defined]

    @classmethod
    def for_key(
        cls, api_key: ApiKey, data=None, *, model_ids: list[str], alerts_default: str = ""
    ) -> KeyForm:
        initial = {name: getattr(api_key, name) for name in cls.base_fields}
        return cls(data, initial=initial, model_ids=model_ids, alerts_default=alerts_default)

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        unchanged = expires_at == self.initial.get("expires_at")
        if expires_at is not None and not unchanged and expires_at <= timezone.now():
            raise ValidationError("Choose a time in the future.", code="past")
        return expires_at

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        daily, monthly = cleaned.get("daily_budget_usd"), cleaned.get("monthly_budget_usd")
        if daily is not None and monthly is not None and daily > monthly:
            self.add_error("daily_budget_usd", "The daily budget is above the monthly budget.")
        return cleaned


class RotateForm(forms.Form):
    grace = forms.TypedChoiceField(
        label="Grace period for the current secret",
        choices=GRACE_CHOICES,
        coerce=lambda seconds: timedelta(seconds=int(seconds)),
        initial="3600",
        widget=forms.RadioSelect,
        help_text="Time to deploy the new secret before the old one is refused.",
    )
