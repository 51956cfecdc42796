from __future__ import annotations

import zoneinfo
from functools import cache

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.core.exceptions import ValidationError

from accounts.models import Account, User
from accounts.throttle import (
    client_ip,
    login_failure_record,
    login_failures_clear,
    login_is_throttled,
)


@cache
def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


def _email_input(**attrs) -> forms.EmailInput:
    return forms.EmailInput(attrs={"autocomplete": "email", "spellcheck": "false", **attrs})


class SignUpForm(forms.Form):
    email = forms.EmailField(max_length=254, widget=_email_input(autofocus=True))
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 8 characters; not a common password or mostly digits.",
    )

    def clean_email(self) -> str:
        email = User.objects.normalize_email(self.cleaned_data["email"]).lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(
                "An account with this email already exists. Log in or reset your password.",
                code="taken",
            )
        return email

    def clean_password(self) -> str:
        # Checked whatever became of the email, so a taken address and a weak
        # password are both told at once; the similarity check compares with
        # the address as typed when it did not pass.
        password = self.cleaned_data["password"]
        email = self.cleaned_data.get("email") or str(self.data.get("email", ""))
        password_validation.validate_password(password, User(email=email))
        return password


class LoginForm(AuthenticationForm):
    """Django's login form on the email address, with failed attempts throttled."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "That email and password do not match an account.",
        "throttled": "Too many failed attempts. Wait 15 minutes or reset your password.",
    }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = "Email"
        self.fields["username"].widget = _email_input(autofocus=True)
        self.fields["password"].widget.attrs["autocomplete"] = "current-password"

    def clean(self) -> dict:
        email = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request) if self.request is not None else "unknown"
        if email and login_is_throttled(email=email, ip=ip):
            raise ValidationError(self.error_messages["throttled"], code="throttled")
        try:
            cleaned = super().clean()
        except ValidationError:
            if email:
                login_failure_record(email=email, ip=ip)
            raise
        login_failures_clear(email=email, ip=ip)
        return cleaned


class ResetRequestForm(PasswordResetForm):
    email = forms.EmailField(max_length=254, widget=_email_input(autofocus=True))

    def get_users(self, email):
        # Django skips users without a usable password (external auth). Here
        # they are accounts made by `createapikey`, whose way in is this reset.
        return (
            user
            for user in User.objects.filter(email__iexact=email, is_active=True)
            if user.email.lower() == email.lower()
        )


class ProfileForm(forms.Form):
    name = forms.CharField(label="Account name", max_length=200)
    timezone = forms.ChoiceField(
        choices=timezone_choices,
        help_text="Today and this month on your pages start at midnight here.",
    )
    notification_email = forms.EmailField(
        label="Default notification email",
        required=False,
        widget=_email_input(),
        help_text="Budget and quota alerts go here unless a key names its own.",
    )

    @classmethod
    def for_account(cls, account: Account, data=None) -> ProfileForm:
        initial = {f: getattr(account, f) for f in ("name", "timezone", "notification_email")}
        return cls(data, initial=initial)
