"""The usage page's filters, read from the query string (every filter is in
the URL, so a view can be bookmarked and shared)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.core.exceptions import ValidationError

from usage.reports import RANGES, Filters, span_for

LONGEST_CUSTOM_DAYS = 366


class UsageFilterForm(forms.Form):
    range = forms.ChoiceField(label="Range", choices=list(RANGES.items()), initial="7d")
    start = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    key = forms.TypedChoiceField(label="Key", required=False, coerce=int, empty_value=None)
    model = forms.ChoiceField(label="Model", required=False)
    group = forms.ChoiceField(
        label="Group by", choices=[("key", "Key"), ("model", "Model")], initial="key"
    )

    def __init__(self, data: Any, *, keys: dict[int, str], models: list[str]) -> None:
        # Missing fields take their initial value: /usage/ alone is the default view.
        data = {name: data.get(name) or field.initial for name, field in self.base_fields.items()}
        super().__init__({k: v for k, v in data.items() if v is not None})
        key, model = self.fields["key"], self.fields["model"]
        assert isinstance(key, forms.ChoiceField) and isinstance(model, forms.ChoiceField)
        key.choices = [("", "All keys"), *sorted(keys.items(), key=lambda k: k[1])]
        model.choices = [("", "All models"), *((m, m) for m in models)]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("range") != "custom":
            return data
        start, end = data.get("start"), data.get("end")
        if start is None or end is None:
            raise ValidationError("A custom range needs a first and a last day.")
        if end < start:
            raise ValidationError("The last day is before the first.")
        if (end - start).days >= LONGEST_CUSTOM_DAYS:
            raise ValidationError(f"A custom range is at most {LONGEST_CUSTOM_DAYS} days.")
        return data

    def filters(self, tz: ZoneInfo, now: datetime) -> Filters:
        data = self.cleaned_data
        return Filters(
            span=span_for(data["range"], tz, now, data.get("start"), data.get("end")),
            key_id=data.get("key"),
            model=data.get("model") or "",
            group=data["group"],
        )
