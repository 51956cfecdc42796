"""The request log's filters, read from the URL (a GET form), so a filtered
log can be bookmarked, shared and exported as it is shown."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.core import signing

from accounts.models import Account
from keys.models import ApiKey
from usage.log import STATUS_CLASSES, Cursor, Filters

ANY = ""
YES_NO = {"yes": True, "no": False}


class LogFilterForm(forms.Form):
    q = forms.CharField(
        label="Find a request",
        required=False,
        max_length=512,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "pb-…, upstream x-request-id or your id"}
        ),
        help_text="PureBridge's request id, the upstream's x-request-id or your "
        "X-Client-Request-Id, exactly.",
    )
    key = forms.ModelChoiceField(
        label="Key", queryset=ApiKey.objects.none(), required=False, empty_label="Every key"
    )
    model = forms.CharField(
        label="Model",
        required=False,
        max_length=128,
        widget=forms.TextInput(attrs={"list": "log-models", "placeholder": "Every model"}),
    )
    status = forms.ChoiceField(
        label="Status",
        required=False,
        choices=[
            (ANY, "Any status"),
            ("2xx", "2xx: answered"),
            ("4xx", "4xx: refused or client left"),
            ("5xx", "5xx: upstream or server failed"),
        ],
    )
    streamed = forms.ChoiceField(
        label="Streamed",
        required=False,
        choices=[(ANY, "Streamed or not"), ("yes", "Streamed"), ("no", "Not streamed")],
    )
    estimated = forms.ChoiceField(
        label="Tokens",
        required=False,
        choices=[
            (ANY, "Reported or estimated"),
            ("yes", "Estimated by PureBridge"),
            ("no", "Reported by the upstream"),
        ],
    )
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    cursor = forms.CharField(label="Page", required=False, widget=forms.HiddenInput)

    def __init__(self, data: Any, *, account: Account) -> None:
        super().__init__(data)
        self.account = account
        key_field = self.fields["key"]
        assert isinstance(key_field, forms.ModelChoiceField)
        # Only this account's keys: another account's key id is not a choice.
        key_field.queryset = ApiKey.objects.filter(account=account).order_by("name")

    def clean_cursor(self) -> Cursor | None:
        token = self.cleaned_data["cursor"]
        if not token:
            return None
        try:
            return Cursor.decode(token)
        except (signing.BadSignature, ValueError, TypeError):
            raise forms.ValidationError(
                "This page link is broken or was changed. Start again from the newest requests."
            ) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end date is before the start date.")
        return data

    def filters(self) -> Filters:
        """The valid form's filters, the dates as midnights in the account's zone."""
        data = self.cleaned_data
        return Filters(
            search=data["q"],
            api_key=data["key"],
            model=data["model"].strip(),
            status_class=data["status"] if data["status"] in STATUS_CLASSES else "",
            streamed=YES_NO.get(data["streamed"]),
            estimated=YES_NO.get(data["estimated"]),
            since=self._midnight(data["since"]),
            until=self._midnight(data["until"], days_after=1),
        )

    def _midnight(self, day: date | None, days_after: int = 0) -> datetime | None:
        if day is None:
            return None
        zone = zoneinfo.ZoneInfo(self.account.timezone)
        return datetime.combine(day + timedelta(days=days_after), time.min, zone)
