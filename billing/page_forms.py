"""The billing page's own form: the low-balance alert."""

from __future__ import annotations

from decimal import Decimal

from django import forms

ALERT_MIN = Decimal("0.01")
ALERT_MAX = Decimal("1000000")


class LowBalanceAlertForm(forms.Form):
    # Its range and its cents are checked in clean_amount, for one message:
    # DecimalField's own checks would each add theirs ("1000000000" is both
    # too large and too many digits).
    amount = forms.DecimalField(
        label="Email me when my balance falls below",
        required=False,
        help_text="In USD. Leave empty for no alert. One email each time it falls below.",
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )

    def clean_amount(self) -> Decimal | None:
        amount = self.cleaned_data["amount"]
        if amount is None:
            return None
        if not ALERT_MIN <= amount <= ALERT_MAX or amount != amount.quantize(ALERT_MIN):
            raise forms.ValidationError(
                f"An amount from $0.01 to ${ALERT_MAX:,}, in dollars and cents (5 or 12.50)."
            )
        return amount
