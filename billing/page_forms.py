"""The billing page's own form: the low-balance alert."""

from __future__ import annotations

from decimal import Decimal

from django import forms

ALERT_MAX = Decimal("1000000")


class LowBalanceAlertForm(forms.Form):
    amount = forms.DecimalField(
        label="Email me when my balance falls below",
        required=False,
        min_value=Decimal("0.01"),
        max_value=ALERT_MAX,
        max_digits=9,
        decimal_places=2,
        help_text="In USD. Leave empty for no alert. One email each time it falls below.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )
