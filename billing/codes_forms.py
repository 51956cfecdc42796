"""The redeem form the billing page shows (templates/billing/_redeem-form.html)."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from billing.codes import code_format, code_normalise


class RedeemForm(forms.Form):
    code = forms.CharField(
        label="Redemption code",
        max_length=64,
        widget=forms.TextInput(
            attrs={
                "placeholder": "PB-XXXX-XXXX-XXXX-XXXX",
                "autocomplete": "off",
                "autocapitalize": "characters",
                "spellcheck": "false",
                "class": "mono",
            }
        ),
    )

    def clean_code(self) -> str:
        """The code as PB-XXXX-XXXX-XXXX-XXXX. A shape error says nothing about
        any code, so it may read differently from "This code is not valid."."""
        body = code_normalise(self.cleaned_data["code"])
        if body is None:
            raise ValidationError(
                "A code is PB- and 16 letters and digits, like PB-7K3M-Q9TD-2WXF-8HJN.",
                code="shape",
            )
        return code_format(body)
