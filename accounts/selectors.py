"""Reads about an account that other apps share."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from accounts.models import Account


def account_alert_email(account: Account) -> str:
    """Where the account's alerts go, and a key's that names no address of
    its own: the profile's notification email, else the account's first
    user's; the first that is a valid address (so one line, never a header of
    its own), or "" when neither is."""
    owner = account.users.order_by("date_joined").values_list("email", flat=True).first()
    for address in (account.notification_email, owner or ""):
        if email_is_valid(address):
            return address
    return ""


def email_is_valid(address: str) -> bool:
    try:
        validate_email(address)
    except ValidationError:
        return False
    return True
