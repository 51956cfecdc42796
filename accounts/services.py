from __future__ import annotations

from django.db import transaction

from accounts.models import Account, User


@transaction.atomic
def account_get_or_create_for_email(*, email: str) -> tuple[Account, bool]:
    """The account of the user with this email, creating both if needed."""
    email = email.strip().lower()
    user = User.objects.select_related("account").filter(email=email).first()
    if user is not None:
        return user.account, False
    user = User.objects.create_user(email=email)  # unusable password until reset
    return user.account, True


@transaction.atomic
def user_sign_up(*, email: str, password: str) -> User:
    """A new user with an account of their own (create_user makes the account)."""
    return User.objects.create_user(email=email, password=password)


def account_profile_update(
    *, account: Account, name: str, timezone: str, notification_email: str
) -> Account:
    account.name = name
    account.timezone = timezone
    account.notification_email = notification_email
    account.full_clean()
    account.save(update_fields=["name", "timezone", "notification_email"])
    return account
